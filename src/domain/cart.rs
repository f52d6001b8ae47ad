//! The basket: lines of catalog products with quantities, and the rules for changing it.

use serde::{Deserialize, Serialize};

use super::{Cents, ProductId, Quantity};

/// One product in a basket, with the catalog facts captured when it was added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BasketLine {
    pub product_id: ProductId,
    pub sku: String,
    pub name: String,
    pub unit_price_cents: Cents,
    pub quantity: Quantity,
}

impl BasketLine {
    pub fn line_total(&self) -> Option<Cents> {
        self.unit_price_cents.checked_mul(self.quantity.get())
    }
}

/// A user's basket, in the order products were first added.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Basket {
    pub lines: Vec<BasketLine>,
}

/// Why a basket change was refused. Each maps to one error code of the HTTP API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CartError {
    #[error("a cart line holds at most {max} of one product; the cart already has {in_cart}")]
    LineLimit { in_cart: u32, max: u32 },
    #[error("only {available} of {sku} in stock; the cart would hold {wanted}")]
    OutOfStock {
        sku: String,
        available: i64,
        wanted: u32,
    },
    #[error("the cart total is too large")]
    TotalOverflow,
}

impl CartError {
    /// The machine-readable code of the API's error JSON.
    pub fn code(&self) -> &'static str {
        match self {
            CartError::LineLimit { .. } => "cart_line_limit",
            CartError::OutOfStock { .. } => "out_of_stock",
            CartError::TotalOverflow => "cart_total_limit",
        }
    }
}

impl Basket {
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn line(&self, product_id: ProductId) -> Option<&BasketLine> {
        self.lines.iter().find(|l| l.product_id == product_id)
    }

    /// Adds `quantity` of a product (merging with an existing line), as long as the
    /// line stays within 1..=99, the stock `available` covers it and the total fits.
    /// On error the basket is unchanged.
    pub fn add(&mut self, product: BasketLine, available: i64) -> Result<(), CartError> {
        let in_cart = self.line(product.product_id).map(|l| l.quantity);
        let wanted = match in_cart {
            Some(q) => q
                .checked_add(product.quantity)
                .ok_or(CartError::LineLimit {
                    in_cart: q.get(),
                    max: Quantity::MAX,
                })?,
            None => product.quantity,
        };
        if i64::from(wanted.get()) > available {
            return Err(CartError::OutOfStock {
                sku: product.sku,
                available: available.max(0),
                wanted: wanted.get(),
            });
        }
        let mut next = self.clone();
        match next
            .lines
            .iter_mut()
            .find(|l| l.product_id == product.product_id)
        {
            Some(line) => {
                // Keep the catalog facts current; the quantity is the merged one.
                *line = BasketLine {
                    quantity: wanted,
                    ..product
                };
            }
            None => next.lines.push(product),
        }
        next.total().ok_or(CartError::TotalOverflow)?;
        *self = next;
        Ok(())
    }

    /// Removes a product's line; returns whether there was one.
    pub fn remove(&mut self, product_id: ProductId) -> bool {
        let before = self.lines.len();
        self.lines.retain(|l| l.product_id != product_id);
        self.lines.len() != before
    }

    /// The sum of all line totals, `None` on overflow.
    pub fn total(&self) -> Option<Cents> {
        let totals: Option<Vec<Cents>> = self.lines.iter().map(BasketLine::line_total).collect();
        Cents::sum(totals?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: i64, price: i64, qty: i64) -> BasketLine {
        BasketLine {
            product_id: ProductId::new(id).unwrap(),
            sku: format!("P{id:03}"),
            name: format!("Product {id}"),
            unit_price_cents: Cents::new(price).unwrap(),
            quantity: Quantity::new(qty).unwrap(),
        }
    }

    #[test]
    fn adding_merges_lines_and_totals() {
        let mut b = Basket::default();
        b.add(line(1, 2500, 2), 100).unwrap();
        b.add(line(2, 1999, 1), 100).unwrap();
        b.add(line(1, 2500, 3), 100).unwrap();
        assert_eq!(b.lines.len(), 2);
        assert_eq!(b.lines[0].quantity.get(), 5);
        assert_eq!(b.lines[0].line_total(), Cents::new(12_500));
        assert_eq!(b.total(), Cents::new(14_499));
    }

    #[test]
    fn a_line_never_passes_ninety_nine() {
        let mut b = Basket::default();
        b.add(line(1, 100, 60), 1000).unwrap();
        let err = b.add(line(1, 100, 40), 1000).unwrap_err();
        assert_eq!(err.code(), "cart_line_limit");
        assert_eq!(
            b.lines[0].quantity.get(),
            60,
            "a refused add changes nothing"
        );
    }

    #[test]
    fn stock_bounds_the_line() {
        let mut b = Basket::default();
        b.add(line(7, 100, 3), 5).unwrap();
        let err = b.add(line(7, 100, 3), 5).unwrap_err();
        assert_eq!(
            err,
            CartError::OutOfStock {
                sku: "P007".into(),
                available: 5,
                wanted: 6
            }
        );
        assert_eq!(err.code(), "out_of_stock");
        assert_eq!(b.lines[0].quantity.get(), 3);
        assert!(b.add(line(8, 100, 1), 0).is_err());
    }

    #[test]
    fn totals_that_overflow_are_refused() {
        let mut b = Basket::default();
        b.add(line(1, i64::MAX / 50, 40), 1000).unwrap();
        let err = b.add(line(2, i64::MAX / 50, 40), 1000).unwrap_err();
        assert_eq!(err, CartError::TotalOverflow);
        assert_eq!(b.lines.len(), 1);
    }

    #[test]
    fn removing() {
        let mut b = Basket::default();
        b.add(line(1, 100, 1), 10).unwrap();
        assert!(!b.remove(ProductId::new(2).unwrap()));
        assert!(b.remove(ProductId::new(1).unwrap()));
        assert!(b.is_empty());
        assert_eq!(b.total(), Some(Cents::ZERO));
    }
}
