//! Parcels: which location ships which part of an order. One location that covers the
//! whole order ships it in one parcel; otherwise the fewest locations that cover it
//! do, each line taken from them in their order.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{BasketLine, OrderId};

/// Where one parcel stands. The strings are what the database stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ParcelStatus {
    Pending,
    Shipping,
    InTransit,
    Delivered,
    Failed,
}

impl ParcelStatus {
    pub const ALL: [ParcelStatus; 5] = [
        ParcelStatus::Pending,
        ParcelStatus::Shipping,
        ParcelStatus::InTransit,
        ParcelStatus::Delivered,
        ParcelStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ParcelStatus::Pending => "pending",
            ParcelStatus::Shipping => "shipping",
            ParcelStatus::InTransit => "in_transit",
            ParcelStatus::Delivered => "delivered",
            ParcelStatus::Failed => "failed",
        }
    }
}

impl TryFrom<String> for ParcelStatus {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        ParcelStatus::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown parcel status `{s}`"))
    }
}

impl fmt::Display for ParcelStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of a parcel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ParcelLine {
    pub product_id: i64,
    pub sku: String,
    pub quantity: i64,
}

impl ParcelLine {
    /// A basket's lines, as one parcel would hold them all.
    pub fn of_basket(basket: &[BasketLine]) -> Vec<ParcelLine> {
        basket
            .iter()
            .map(|l| ParcelLine {
                product_id: l.product_id.get(),
                sku: l.sku.clone(),
                quantity: i64::from(l.quantity.get()),
            })
            .collect()
    }
}

/// What `lines` cost at the basket's prices.
pub fn amount(lines: &[ParcelLine], basket: &[BasketLine]) -> i64 {
    let price = |product_id: i64| {
        (basket.iter())
            .find(|l| l.product_id.get() == product_id)
            .map_or(0, |l| l.unit_price_cents.get())
    };
    lines.iter().map(|l| price(l.product_id) * l.quantity).sum()
}

/// What one location ships.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParcelPlan {
    pub location: String,
    pub lines: Vec<ParcelLine>,
}

/// What each location has of each product: locations in their order.
pub type Levels = Vec<(String, BTreeMap<i64, i64>)>;

/// Locations are few; beyond this many, only one-location plans and all of them
/// together are tried.
const MAX_SUBSET_SEARCH: usize = 12;

/// The parcels for `lines` (product id, sku, quantity) from `levels`, or `None` when
/// all the locations together cannot cover a line.
pub fn plan(lines: &[ParcelLine], levels: &Levels) -> Option<Vec<ParcelPlan>> {
    let n = levels.len();
    let candidates: Vec<Vec<usize>> = if n <= MAX_SUBSET_SEARCH {
        let mut subsets: Vec<Vec<usize>> = (1u32..(1 << n))
            .map(|mask| (0..n).filter(|i| mask & (1 << i) != 0).collect())
            .collect();
        // Fewest locations first; among as many, the earlier locations first.
        subsets.sort_by_key(|s: &Vec<usize>| s.len());
        subsets
    } else {
        (0..n).map(|i| vec![i]).chain([(0..n).collect()]).collect()
    };
    candidates
        .into_iter()
        .find_map(|subset| allocate(lines, levels, &subset))
}

/// Takes each line from the subset's locations in order; `None` when they fall short.
fn allocate(lines: &[ParcelLine], levels: &Levels, subset: &[usize]) -> Option<Vec<ParcelPlan>> {
    let mut parcels: Vec<ParcelPlan> = subset
        .iter()
        .map(|&i| ParcelPlan {
            location: levels[i].0.clone(),
            lines: Vec::new(),
        })
        .collect();
    for line in lines {
        let mut need = line.quantity;
        for (parcel, &i) in parcels.iter_mut().zip(subset) {
            let have = levels[i].1.get(&line.product_id).copied().unwrap_or(0);
            let take = need.min(have.max(0));
            if take > 0 {
                parcel.lines.push(ParcelLine {
                    quantity: take,
                    ..line.clone()
                });
                need -= take;
            }
        }
        if need > 0 {
            return None;
        }
    }
    // A location the others already covered ships nothing.
    parcels.retain(|p| !p.lines.is_empty());
    Some(parcels)
}

/// The carrier's reference for a parcel: the order id when the order is one parcel,
/// `<order id>-<location>` for each parcel of a split order.
pub fn shipment_id(order_id: &OrderId, location: &str, parcels: usize) -> String {
    if parcels <= 1 {
        order_id.to_string()
    } else {
        format!("{order_id}-{location}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(product_id: i64, quantity: i64) -> ParcelLine {
        ParcelLine {
            product_id,
            sku: format!("P{product_id:03}"),
            quantity,
        }
    }

    fn levels(rows: &[(&str, &[(i64, i64)])]) -> Levels {
        rows.iter()
            .map(|(loc, stock)| (loc.to_string(), stock.iter().copied().collect()))
            .collect()
    }

    fn shape(plan: &[ParcelPlan]) -> Vec<(String, Vec<(i64, i64)>)> {
        plan.iter()
            .map(|p| {
                let lines = p.lines.iter().map(|l| (l.product_id, l.quantity)).collect();
                (p.location.clone(), lines)
            })
            .collect()
    }

    #[test]
    fn one_location_that_covers_everything_ships_it_all() {
        let lv = levels(&[("east", &[(1, 1), (2, 5)]), ("west", &[(1, 5), (2, 5)])]);
        let plan = plan(&[line(1, 2), line(2, 2)], &lv).unwrap();
        assert_eq!(shape(&plan), vec![("west".into(), vec![(1, 2), (2, 2)])]);
        let plan = super::plan(&[line(2, 2)], &lv).unwrap();
        assert_eq!(
            shape(&plan),
            vec![("east".into(), vec![(2, 2)])],
            "the first one"
        );
    }

    #[test]
    fn otherwise_the_fewest_locations_split_it() {
        let lv = levels(&[
            ("east", &[(1, 2)]),
            ("west", &[(2, 1)]),
            ("north", &[(1, 1), (2, 1)]),
        ]);
        // 3 of product 1: east's 2 and north's 1 (two parcels, not three).
        let plan = plan(&[line(1, 3), line(2, 1)], &lv).unwrap();
        assert_eq!(
            shape(&plan),
            vec![
                ("east".into(), vec![(1, 2)]),
                ("north".into(), vec![(1, 1), (2, 1)])
            ]
        );
    }

    #[test]
    fn one_line_may_come_from_two_places() {
        let lv = levels(&[("east", &[(7, 2)]), ("west", &[(7, 1)])]);
        let plan = plan(&[line(7, 3)], &lv).unwrap();
        assert_eq!(
            shape(&plan),
            vec![("east".into(), vec![(7, 2)]), ("west".into(), vec![(7, 1)])]
        );
        assert_eq!(super::plan(&[line(7, 4)], &lv), None, "4 > 2 + 1");
        assert_eq!(super::plan(&[line(8, 1)], &lv), None, "nobody has it");
    }

    #[test]
    fn shipment_ids() {
        let id = OrderId::parse("ord-1").unwrap();
        assert_eq!(shipment_id(&id, "east", 1), "ord-1");
        assert_eq!(shipment_id(&id, "west", 2), "ord-1-west");
    }

    #[test]
    fn statuses_round_trip() {
        for s in ParcelStatus::ALL {
            assert_eq!(ParcelStatus::try_from(s.as_str().to_owned()), Ok(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
    }
}
