-- Sign-in with a password: an argon2id hash (PHC string), NULL for users without one
-- (the seeded demo users), who can sign in only in demo mode or with an operator's token.
ALTER TABLE users ADD COLUMN password_hash TEXT;
