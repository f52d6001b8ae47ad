//! The simulated carrier's records: shipments, and the drill that makes it fail or
//! flake for the next orders.

use serde::{Deserialize, Serialize};

use crate::clock::now_rfc3339;
use crate::db::Db;
use crate::db::rows::from_row;
use crate::domain::CarrierMode;
use crate::domain::OrderId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    pub order_id: String,
    pub carrier: String,
    pub tracking_number: String,
    pub state: String,
}
from_row!(Shipment {
    order_id,
    carrier,
    tracking_number,
    state
});

impl Db {
    /// The carrier an order meets, fixed at its first booking attempt: what the order id
    /// asks for, else the admin's carrier drill while it has orders left (taking one),
    /// else a normal one.
    pub async fn carrier_mode(&self, order_id: &OrderId) -> sqlx::Result<CarrierMode> {
        let decode = |e: String| sqlx::Error::Decode(e.into());
        let mut tx = self.begin_write().await?;
        let known: Option<String> =
            sqlx::query_scalar("SELECT mode FROM carrier_order_modes WHERE order_id = $1")
                .bind(order_id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(mode) = known {
            tx.commit().await?;
            return CarrierMode::parse(&mode).map_err(decode);
        }
        let mode = match CarrierMode::of_order_id(order_id.as_str()) {
            Some(mode) => mode,
            None => {
                let drill: Option<String> = sqlx::query_scalar(
                    "UPDATE carrier_drill SET remaining = remaining - 1
                     WHERE id = 1 AND remaining > 0 RETURNING mode",
                )
                .fetch_optional(&mut *tx)
                .await?;
                match drill {
                    Some(mode) => CarrierMode::parse(&mode).map_err(decode)?,
                    None => CarrierMode::Normal,
                }
            }
        };
        sqlx::query("INSERT INTO carrier_order_modes (order_id, mode) VALUES ($1, $2)")
            .bind(order_id.as_str())
            .bind(mode.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(mode)
    }

    /// Sets the carrier drill: the next `orders` orders meet a carrier in `mode`
    /// (`Normal` or 0 orders ends the drill).
    pub async fn set_carrier_drill(&self, mode: CarrierMode, orders: i64) -> sqlx::Result<()> {
        if mode == CarrierMode::Normal || orders <= 0 {
            sqlx::query("DELETE FROM carrier_drill")
                .execute(self.pool())
                .await?;
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO carrier_drill (id, mode, remaining) VALUES (1, $1, $2)
             ON CONFLICT (id) DO UPDATE SET mode = $1, remaining = $2",
        )
        .bind(mode.as_str())
        .bind(orders)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The carrier drill under way: its mode and how many orders it has left.
    pub async fn carrier_drill(&self) -> sqlx::Result<Option<(CarrierMode, i64)>> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT mode, remaining FROM carrier_drill WHERE id = 1 AND remaining > 0",
        )
        .fetch_optional(self.pool())
        .await?;
        row.map(|(mode, n)| {
            CarrierMode::parse(&mode)
                .map(|m| (m, n))
                .map_err(|e| sqlx::Error::Decode(e.into()))
        })
        .transpose()
    }

    /// Records a booked shipment; a second booking for the order returns the first.
    pub async fn book_shipment(
        &self,
        order_id: &OrderId,
        carrier: &str,
        tracking: &str,
    ) -> sqlx::Result<Shipment> {
        sqlx::query(
            "INSERT INTO shipments (order_id, carrier, tracking_number, state, created_at)
             VALUES ($1, $2, $3, 'booked', $4) ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(order_id.as_str())
        .bind(carrier)
        .bind(tracking)
        .bind(now_rfc3339())
        .execute(self.pool())
        .await?;
        self.shipment(order_id)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }

    pub async fn shipment(&self, order_id: &OrderId) -> sqlx::Result<Option<Shipment>> {
        sqlx::query_as(
            "SELECT order_id, carrier, tracking_number, state FROM shipments WHERE order_id = $1",
        )
        .bind(order_id.as_str())
        .fetch_optional(self.pool())
        .await
    }

    /// Cancels a booked shipment; idempotent.
    pub async fn cancel_shipment(&self, order_id: &OrderId) -> sqlx::Result<bool> {
        Ok(sqlx::query(
            "UPDATE shipments SET state = 'cancelled', cancelled_at = $1 WHERE order_id = $2 AND state = 'booked'",
        )
        .bind(now_rfc3339())
        .bind(order_id.as_str())
        .execute(self.pool())
        .await?
        .rows_affected()
            == 1)
    }
}
