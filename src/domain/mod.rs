//! Pure business types and rules: parsed newtypes, money, the basket. No I/O here.

pub mod cart;
pub mod ids;
pub mod money;
pub mod quantity;

pub use cart::{Basket, BasketLine, CartError};
pub use ids::{ProductId, ProductRef, Username};
pub use money::Cents;
pub use quantity::Quantity;
