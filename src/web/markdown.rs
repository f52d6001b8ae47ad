//! Markdown views of API data (the proposal's order view). User-supplied text is
//! escaped so it cannot inject markup.

use std::fmt::Write;

use super::orders::OrderView;
use crate::domain::{Cents, Step, StepState};

/// Escapes the characters that markdown (and HTML inside markdown) would interpret.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

fn money(cents: i64) -> String {
    Cents::new(cents).unwrap_or(Cents::ZERO).to_string()
}

pub fn icon(state: StepState) -> &'static str {
    match state {
        StepState::Done => "✅",
        StepState::Active => "⏳",
        StepState::Pending => "⬜",
        StepState::Failed => "❌",
        StepState::Compensated => "↩",
    }
}

/// The checklist line for a step, worded for its state.
pub fn step_label(step: &Step, order: &OrderView) -> String {
    use StepState::*;
    let label = match (step.name.as_str(), step.state) {
        ("payment", Done) => match &order.payment.transaction_id {
            Some(t) => format!("Payment Confirmed (Transaction: {})", escape(t)),
            None => "Payment Confirmed".to_owned(),
        },
        ("payment", Active) => "Awaiting Payment".to_owned(),
        ("payment", _) => "Payment".to_owned(),
        ("approval", Active) => "Awaiting Admin Approval".to_owned(),
        ("approval", Done) => "Approved by Admin".to_owned(),
        ("approval", _) => "Admin Approval".to_owned(),
        ("shipping", Done | Compensated) => {
            match (&order.shipment.carrier, &order.shipment.tracking_number) {
                (Some(c), Some(t)) => {
                    format!("Shipment Initiated ({}, tracking {})", escape(c), escape(t))
                }
                _ => "Shipment Initiated".to_owned(),
            }
        }
        ("shipping", _) => "Shipping Initiation".to_owned(),
        ("delivery", Active) => "In Transit".to_owned(),
        ("delivery", Done) => "Delivery Completed".to_owned(),
        ("delivery", _) => "Delivery".to_owned(),
        (_, _) => "Delivery Confirmation".to_owned(),
    };
    let suffix = match step.state {
        Failed => " (failed)",
        Compensated => " (undone)",
        _ => "",
    };
    format!("{} {label}{suffix}", icon(step.state))
}

/// The proposal's markdown order view.
pub fn order(o: &OrderView) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Order #{}\n", escape(&o.order_id));
    let _ = writeln!(md, "**Status**: {}  ", o.status.label());
    let _ = writeln!(md, "**User**: {}  ", escape(&o.user_id));
    let _ = writeln!(md, "**Total**: {}  ", money(o.total_cents));
    let _ = writeln!(md, "**Ship to**: {}", escape(&o.shipping_address));
    if let Some(reason) = &o.failure_reason {
        let _ = writeln!(md, "\n**Reason**: {}", escape(reason));
    }
    let _ = writeln!(
        md,
        "\n## Items\n\n| SKU | Product | Qty | Price |\n|-----|---------|-----|-------|"
    );
    for item in &o.items {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            escape(&item.sku),
            escape(&item.name),
            item.quantity,
            money(item.line_total_cents)
        );
    }
    let _ = writeln!(md, "\n## Workflow Progress\n");
    for step in &o.steps {
        let _ = writeln!(md, "- {}", step_label(step, o));
    }
    if !o.compensations.is_empty() {
        let _ = writeln!(md, "\n## Compensations\n");
        for c in &o.compensations {
            let _ = writeln!(md, "- ↩ {} at {}", escape(&c.name), escape(&c.ran_at));
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_neutralises_markup() {
        assert_eq!(escape("a|b"), "a\\|b");
        assert_eq!(
            escape("<img src=x onerror=alert(1)>"),
            "&lt;img src=x onerror=alert(1)&gt;"
        );
        assert_eq!(escape("**bold** [x](y)"), "\\*\\*bold\\*\\* \\[x\\](y)");
        assert_eq!(escape("order-1.5 & co"), "order-1.5 &amp; co");
        assert_eq!(escape("line\nbreak"), "line break");
    }
}
