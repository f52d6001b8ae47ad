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
    /// The carrier a parcel meets (by its shipment id), fixed at its first booking
    /// attempt: what the order id asks for, else the admin's carrier drill while it
    /// has parcels left and hits this location (taking one), else a normal one.
    pub async fn carrier_mode(
        &self,
        shipment_id: &str,
        location: &str,
    ) -> sqlx::Result<CarrierMode> {
        let decode = |e: String| sqlx::Error::Decode(e.into());
        let mut tx = self.begin_write().await?;
        let known: Option<String> =
            sqlx::query_scalar("SELECT mode FROM carrier_order_modes WHERE order_id = $1")
                .bind(shipment_id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(mode) = known {
            tx.commit().await?;
            return CarrierMode::parse(&mode).map_err(decode);
        }
        let mode = match CarrierMode::of_order_id(shipment_id) {
            Some(mode) => mode,
            None => {
                let drill: Option<String> = sqlx::query_scalar(
                    "UPDATE carrier_drill SET remaining = remaining - 1
                     WHERE id = 1 AND remaining > 0 AND COALESCE(location, $1) = $1
                     RETURNING mode",
                )
                .bind(location)
                .fetch_optional(&mut *tx)
                .await?;
                match drill {
                    Some(mode) => CarrierMode::parse(&mode).map_err(decode)?,
                    None => CarrierMode::Normal,
                }
            }
        };
        sqlx::query("INSERT INTO carrier_order_modes (order_id, mode) VALUES ($1, $2)")
            .bind(shipment_id)
            .bind(mode.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(mode)
    }

    /// Sets the carrier drill: the next `orders` parcels (from `location` only, when
    /// given) meet a carrier in `mode` (`Normal` or 0 orders ends the drill).
    pub async fn set_carrier_drill(
        &self,
        mode: CarrierMode,
        orders: i64,
        location: Option<&str>,
    ) -> sqlx::Result<()> {
        if mode == CarrierMode::Normal || orders <= 0 {
            sqlx::query("DELETE FROM carrier_drill")
                .execute(self.pool())
                .await?;
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO carrier_drill (id, mode, remaining, location) VALUES (1, $1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET mode = $1, remaining = $2, location = $3",
        )
        .bind(mode.as_str())
        .bind(orders)
        .bind(location)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The carrier drill under way: its mode, how many parcels it has left, and the
    /// location it hits (every one when `None`).
    pub async fn carrier_drill(&self) -> sqlx::Result<Option<(CarrierMode, i64, Option<String>)>> {
        let row: Option<(String, i64, Option<String>)> = sqlx::query_as(
            "SELECT mode, remaining, location FROM carrier_drill WHERE id = 1 AND remaining > 0",
        )
        .fetch_optional(self.pool())
        .await?;
        row.map(|(mode, n, location)| {
            CarrierMode::parse(&mode)
                .map(|m| (m, n, location))
                .map_err(|e| sqlx::Error::Decode(e.into()))
        })
        .transpose()
    }

    /// Records a booked shipment; a second booking for the order returns the first.
    pub async fn book_shipment(
        &self,
        shipment_id: &str,
        carrier: &str,
        tracking: &str,
    ) -> sqlx::Result<Shipment> {
        sqlx::query(
            "INSERT INTO shipments (order_id, carrier, tracking_number, state, created_at)
             VALUES ($1, $2, $3, 'booked', $4) ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(shipment_id)
        .bind(carrier)
        .bind(tracking)
        .bind(now_rfc3339())
        .execute(self.pool())
        .await?;
        self.shipment(shipment_id)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }

    /// The carrier's record under a shipment id (an order's, or a parcel's).
    pub async fn shipment(&self, shipment_id: &str) -> sqlx::Result<Option<Shipment>> {
        sqlx::query_as(
            "SELECT order_id, carrier, tracking_number, state FROM shipments WHERE order_id = $1",
        )
        .bind(shipment_id)
        .fetch_optional(self.pool())
        .await
    }

    /// Cancels the order's booked shipments (every parcel's) and marks its parcels
    /// in transit as failed; idempotent. True when it cancelled one now.
    pub async fn cancel_shipment(&self, order_id: &OrderId) -> sqlx::Result<bool> {
        let mut tx = self.begin_write().await?;
        let now = now_rfc3339();
        let cancelled = sqlx::query(
            "UPDATE shipments SET state = 'cancelled', cancelled_at = $1
             WHERE state = 'booked' AND (order_id = $2
                   OR order_id IN (SELECT shipment_id FROM parcels WHERE order_id = $2))",
        )
        .bind(&now)
        .bind(order_id.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(
            "UPDATE parcels SET status = 'failed', updated_at = $1
             WHERE order_id = $2 AND status IN ('shipping', 'in_transit')",
        )
        .bind(&now)
        .bind(order_id.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(cancelled > 0)
    }
}
