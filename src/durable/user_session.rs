//! `UserSession`: the virtual object keyed by user name that owns the user's basket.

use restate_sdk::prelude::*;
use serde::{Deserialize, Serialize};

use super::errors::refusal;
use crate::db::Db;
use crate::domain::{Basket, BasketLine, Cents, ProductId, ProductRef, Quantity};

/// State key of the basket.
pub const BASKET: &str = "basket";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddItem {
    pub product_id: ProductId,
    pub quantity: Quantity,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoveItem {
    pub product_id: ProductId,
}

/// What the catalog says about a product at the moment of a cart change.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CatalogEntry {
    line: BasketLine,
    available: i64,
}

pub struct UserSession {
    db: Db,
}

impl UserSession {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Reads a product from the catalog. A read is not deterministic (stock moves), so
    /// it runs inside `ctx.run` and its answer is journaled for replays.
    async fn catalog_entry(
        &self,
        ctx: &ObjectContext<'_>,
        product_id: ProductId,
        quantity: Quantity,
    ) -> Result<CatalogEntry, HandlerError> {
        let found = ctx
            .run(|| async move {
                let product = self.db.product(&ProductRef::Id(product_id)).await?;
                Ok(Json(product.map(|p| CatalogEntry {
                    line: BasketLine {
                        product_id,
                        sku: p.sku,
                        name: p.name,
                        unit_price_cents: Cents::new(p.price_cents).unwrap_or(Cents::ZERO),
                        quantity,
                    },
                    available: p.stock_qty,
                })))
            })
            .name("catalog_lookup")
            .await?
            .into_inner();
        found.ok_or_else(|| {
            refusal(
                404,
                "unknown_product",
                format!("no product with id {product_id}"),
            )
            .into()
        })
    }
}

#[restate_sdk::object]
impl UserSession {
    /// Adds a quantity of a catalog product to the basket.
    #[handler(name = "AddItem")]
    async fn add_item(
        &self,
        ctx: ObjectContext<'_>,
        req: Json<AddItem>,
    ) -> Result<Json<Basket>, HandlerError> {
        let req = req.into_inner();
        let entry = self
            .catalog_entry(&ctx, req.product_id, req.quantity)
            .await?;
        let mut basket = ctx
            .get::<Json<Basket>>(BASKET)
            .await?
            .unwrap_or_default()
            .into_inner();
        basket
            .add(entry.line, entry.available)
            .map_err(|e| refusal(409, e.code(), &e))?;
        ctx.set(BASKET, Json(basket.clone()));
        Ok(Json(basket))
    }

    /// Removes a product's line from the basket; removing what is not there is a no-op.
    #[handler(name = "RemoveItem")]
    async fn remove_item(
        &self,
        ctx: ObjectContext<'_>,
        req: Json<RemoveItem>,
    ) -> Result<Json<Basket>, HandlerError> {
        let req = req.into_inner();
        let mut basket = ctx
            .get::<Json<Basket>>(BASKET)
            .await?
            .unwrap_or_default()
            .into_inner();
        if basket.remove(req.product_id) {
            ctx.set(BASKET, Json(basket.clone()));
        }
        Ok(Json(basket))
    }

    /// The basket as it is now; shared, so it never waits behind an exclusive handler.
    #[handler(name = "GetBasket")]
    async fn get_basket(&self, ctx: SharedObjectContext<'_>) -> Result<Json<Basket>, HandlerError> {
        Ok(ctx.get::<Json<Basket>>(BASKET).await?.unwrap_or_default())
    }
}
