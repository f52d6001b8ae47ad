//! An order's parcels and the money that moves with them: a parcel that ships is
//! captured, one that fails gives its stock back and its part of the authorization is
//! voided. Each write is keyed by the parcel (`payment_captures.entry_id`), so a step
//! run again after a crash moves nothing twice.

use serde::{Deserialize, Serialize};

use super::stock::{insert_parcel, release_in};
use crate::clock::now_rfc3339;
use crate::db::Db;
use crate::db::rows::from_row;
use crate::domain::{BasketLine, OrderId, ParcelLine, ParcelStatus};

/// One parcel as the order shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Parcel {
    pub shipment_id: String,
    pub location: String,
    pub items: ParcelLines,
    /// What the parcel's lines cost: captured when it ships, voided when it fails.
    pub amount_cents: i64,
    pub status: ParcelStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
}
from_row!(Parcel {
    shipment_id,
    location,
    items: String,
    amount_cents,
    status: String,
    carrier,
    tracking_number
});

/// A parcel's lines, stored as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct ParcelLines(pub Vec<ParcelLine>);

impl TryFrom<String> for ParcelLines {
    type Error = serde_json::Error;
    fn try_from(items: String) -> Result<Self, Self::Error> {
        serde_json::from_str(&items)
    }
}

const PARCEL_COLUMNS: &str = "SELECT p.shipment_id, p.location, p.items, p.amount_cents, p.status,
        s.carrier, s.tracking_number
 FROM parcels p JOIN locations l ON l.id = p.location
 LEFT JOIN shipments s ON s.order_id = p.shipment_id";

impl Db {
    /// The order's parcels, in location order.
    pub async fn parcels_of(&self, order_id: &OrderId) -> sqlx::Result<Vec<Parcel>> {
        sqlx::query_as(&format!(
            "{PARCEL_COLUMNS} WHERE p.order_id = $1 ORDER BY l.position, l.id"
        ))
        .bind(order_id.as_str())
        .fetch_all(self.pool())
        .await
    }

    /// The order was approved: its parcels go to the carrier. An order checked out
    /// before parcels existed gets its one parcel now (all of it, from `east`, where
    /// its reservation is).
    pub async fn start_parcels(&self, order_id: &OrderId) -> sqlx::Result<Vec<Parcel>> {
        let mut tx = self.begin_write().await?;
        let known: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM parcels WHERE order_id = $1")
            .bind(order_id.as_str())
            .fetch_one(&mut *tx)
            .await?;
        if known == 0 {
            insert_whole_parcel(&mut tx, order_id).await?;
        }
        sqlx::query(
            "UPDATE parcels SET status = 'shipping', updated_at = $1
             WHERE order_id = $2 AND status = 'pending'",
        )
        .bind(now_rfc3339())
        .bind(order_id.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.parcels_of(order_id).await
    }

    /// A parcel the carrier took: in transit, and its part of the payment captured.
    pub async fn parcel_shipped(&self, order_id: &OrderId, parcel: &Parcel) -> sqlx::Result<()> {
        let mut tx = self.begin_write().await?;
        settle(&mut tx, order_id, parcel, Settle::Capture).await?;
        set_status(&mut tx, &parcel.shipment_id, ParcelStatus::InTransit).await?;
        tx.commit().await
    }

    /// A parcel the carrier would not take: its stock goes back to its location and
    /// its part of the payment is voided, never captured.
    pub async fn parcel_failed(&self, order_id: &OrderId, parcel: &Parcel) -> sqlx::Result<()> {
        let mut tx = self.begin_write().await?;
        release_in(&mut tx, order_id, Some(&parcel.location)).await?;
        settle(&mut tx, order_id, parcel, Settle::Void).await?;
        set_status(&mut tx, &parcel.shipment_id, ParcelStatus::Failed).await?;
        tx.commit().await
    }

    /// Voids what is left of the order's authorization (neither captured nor voided),
    /// once; answers the amount that void took (the same when run again).
    pub async fn void_rest(&self, order_id: &OrderId) -> sqlx::Result<i64> {
        let entry = format!("void:{order_id}:rest");
        let mut tx = self.begin_write().await?;
        let before: Option<i64> =
            sqlx::query_scalar("SELECT amount_cents FROM payment_captures WHERE entry_id = $1")
                .bind(&entry)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(voided) = before {
            return Ok(voided);
        }
        let rest = open_amount(&mut tx, order_id).await?;
        let voided = if rest > 0 && record(&mut tx, &entry, order_id, "void", rest).await? {
            add_to(&mut tx, order_id, "voided_cents", rest).await?;
            rest
        } else {
            0
        };
        tx.commit().await?;
        Ok(voided)
    }
}

#[derive(Clone, Copy)]
enum Settle {
    Capture,
    Void,
}

/// Captures or voids the parcel's amount, once per parcel; a payment taken before
/// parcels (`captured_cents` NULL) was captured whole and moves no more.
async fn settle(
    conn: &mut sqlx::AnyConnection,
    order_id: &OrderId,
    parcel: &Parcel,
    how: Settle,
) -> sqlx::Result<()> {
    let (kind, column) = match how {
        Settle::Capture => ("capture", "captured_cents"),
        Settle::Void => ("void", "voided_cents"),
    };
    let amount = parcel.amount_cents.min(open_amount(conn, order_id).await?);
    let entry = format!("{kind}:{}", parcel.shipment_id);
    if amount > 0 && record(conn, &entry, order_id, kind, amount).await? {
        add_to(conn, order_id, column, amount).await?;
    }
    Ok(())
}

/// What of the order's authorization is neither captured nor voided (0 when the gateway
/// never accepted it, or for a payment taken before parcels: captured whole).
async fn open_amount(conn: &mut sqlx::AnyConnection, order_id: &OrderId) -> sqlx::Result<i64> {
    let open: Option<i64> = sqlx::query_scalar(
        "SELECT amount_cents - captured_cents - voided_cents FROM payment_requests
         WHERE order_id = $1 AND state = 'succeeded' AND captured_cents IS NOT NULL",
    )
    .bind(order_id.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(open.unwrap_or(0))
}

/// Records one capture or void; false when it was recorded before.
async fn record(
    conn: &mut sqlx::AnyConnection,
    entry: &str,
    order_id: &OrderId,
    kind: &str,
    amount: i64,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "INSERT INTO payment_captures (entry_id, order_id, kind, amount_cents, created_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (entry_id) DO NOTHING",
    )
    .bind(entry)
    .bind(order_id.as_str())
    .bind(kind)
    .bind(amount)
    .bind(now_rfc3339())
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1)
}

async fn add_to(
    conn: &mut sqlx::AnyConnection,
    order_id: &OrderId,
    column: &str,
    amount: i64,
) -> sqlx::Result<()> {
    sqlx::query(&format!(
        "UPDATE payment_requests SET {column} = {column} + $1 WHERE order_id = $2"
    ))
    .bind(amount)
    .bind(order_id.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn set_status(
    conn: &mut sqlx::AnyConnection,
    shipment_id: &str,
    status: ParcelStatus,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE parcels SET status = $1, updated_at = $2
         WHERE shipment_id = $3 AND status IN ('pending', 'shipping')",
    )
    .bind(status.as_str())
    .bind(now_rfc3339())
    .bind(shipment_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The one parcel of an order checked out before parcels: everything, from `east`.
async fn insert_whole_parcel(
    conn: &mut sqlx::AnyConnection,
    order_id: &OrderId,
) -> sqlx::Result<()> {
    let items: Option<String> = sqlx::query_scalar("SELECT items FROM orders WHERE order_id = $1")
        .bind(order_id.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    let Some(items) = items else {
        return Ok(());
    };
    let basket: Vec<BasketLine> =
        serde_json::from_str(&items).map_err(|e| sqlx::Error::Decode(e.into()))?;
    let lines = ParcelLine::of_basket(&basket);
    let at = (order_id.as_str(), "east");
    insert_parcel(conn, order_id, at, &lines, &basket, &now_rfc3339()).await
}
