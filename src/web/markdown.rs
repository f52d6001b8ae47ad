//! Markdown views of API data (the order's `text/markdown` view and the UI's output pane),
//! and their rendering to HTML. User-supplied text is escaped so it cannot inject
//! markup, and the HTML renderer drops raw HTML as a second line of defence.

use std::fmt::Write;

use pulldown_cmark::{Event, Options, Parser};

use crate::app::cart::CartView;
use crate::app::deployments::Deployment;
use crate::app::orders::OrderView;
use crate::db::Product;
use crate::db::orders::OrderSummary;
use crate::domain::{Cents, OrderStatus, Step, StepState};

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

/// The order's markdown view (`Accept: text/markdown`).
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
    if let Some(state) = &o.payment.state {
        let captured = money(o.payment.captured_cents);
        let _ = writeln!(md, "\n**Payment**: {state}, {captured} captured");
    }
    if o.payment.refunded_cents > 0 {
        let refunded = money(o.payment.refunded_cents);
        let _ = writeln!(md, "\n**Refunded**: {refunded} to the customer");
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
    if let (Some(carrier), Some(tracking)) = (&o.shipment.carrier, &o.shipment.tracking_number) {
        let _ = writeln!(md, "\n## Shipment Tracking\n");
        let _ = writeln!(md, "- **Carrier**: {}", escape(carrier));
        let _ = writeln!(md, "- **Tracking number**: `{}`", tracking.replace('`', ""));
        let _ = writeln!(md, "- **Ship to**: {}", escape(&o.shipping_address));
        let _ = writeln!(md, "- **State**: {}", o.status.label());
    }
    parcels(&mut md, o);
    if !o.compensations.is_empty() {
        let _ = writeln!(md, "\n## Compensations\n");
        for c in &o.compensations {
            let _ = writeln!(md, "- ↩ {} at {}", escape(&c.name), escape(&c.ran_at));
        }
    }
    returns_and_refunds(&mut md, o);
    md
}

/// The order's parcels side by side: where each ships from, what it holds, where it is.
fn parcels(md: &mut String, o: &OrderView) {
    if o.shipments.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "\n## Parcels\n\n| From | Items | Amount | Status | Carrier | Tracking |\n|---|---|---|---|---|---|"
    );
    for p in &o.shipments {
        let items: Vec<String> = (p.items.0.iter())
            .map(|l| format!("{} × {}", l.quantity, escape(&l.sku)))
            .collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            escape(&p.location),
            items.join(", "),
            money(p.amount_cents),
            p.status.as_str().replace('_', " "),
            p.carrier.as_deref().map_or_else(String::new, escape),
            p.tracking_number
                .as_deref()
                .map_or_else(String::new, |t| format!("`{}`", t.replace('`', "")))
        );
    }
}

/// The order's returns and every refund, with its reason.
fn returns_and_refunds(md: &mut String, o: &OrderView) {
    if !o.returns.is_empty() {
        let _ = writeln!(
            md,
            "\n## Returns\n\n| Return | Items | Status | Refunded | Why |\n|---|---|---|---|---|"
        );
        for r in &o.returns {
            let items: Vec<String> = r
                .items
                .iter()
                .map(|l| format!("{} × {}", l.quantity, escape(&l.name)))
                .collect();
            let status = match &r.label {
                Some(l) if r.status == crate::domain::ReturnStatus::AwaitingParcel => format!(
                    "awaiting parcel ({} `{}`)",
                    escape(&l.carrier),
                    l.tracking_number.replace('`', "")
                ),
                _ => r.status.as_str().replace('_', " "),
            };
            let why = r.reject_reason.as_deref().map_or_else(
                || escape(&r.reason),
                |n| format!("{} (rejected: {})", escape(&r.reason), escape(n)),
            );
            let _ = writeln!(
                md,
                "| {} | {} | {status} | {} | {why} |",
                escape(&r.return_id),
                items.join(", "),
                money(r.refund_cents)
            );
        }
    }
    if !o.payment.refunds.is_empty() {
        let (captured, refunded) = (
            money(o.payment.captured_cents),
            money(o.payment.refunded_cents),
        );
        let _ = writeln!(
            md,
            "\n## Refunds\n\n{refunded} of {captured} paid.\n\n| When | Amount | Kind | Why |\n|---|---|---|---|"
        );
        for r in &o.payment.refunds {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                escape(&r.created_at),
                money(r.amount_cents),
                r.kind.as_str(),
                escape(&r.reason)
            );
        }
    }
}

/// Markdown to HTML, tables on. Raw HTML in the source is shown as text, never
/// passed through.
pub fn to_html(md: &str) -> String {
    let parser = Parser::new_ext(md, Options::ENABLE_TABLES).map(|event| match event {
        Event::Html(html) | Event::InlineHtml(html) => Event::Text(html),
        other => other,
    });
    let mut html = String::with_capacity(md.len() * 2);
    pulldown_cmark::html::push_html(&mut html, parser);
    // Column alignment comes out as inline styles, which the page's CSP forbids: say it
    // with classes instead. Text has its `<` escaped, so only the renderer writes a tag.
    for cell in ["td", "th"] {
        for align in ["left", "center", "right"] {
            html = html.replace(
                &format!("<{cell} style=\"text-align: {align}\">"),
                &format!("<{cell} class=\"align-{align}\">"),
            );
        }
    }
    html
}

/// The catalog as a table, with what is in stock now.
pub fn products(products: &[Product]) -> String {
    let mut md = String::from(
        "# Products\n\n| SKU | Product | Description | Price | In stock |\n|-----|---------|-------------|------:|---------:|\n",
    );
    for p in products {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            escape(&p.sku),
            escape(&p.name),
            escape(&p.description),
            money(p.price_cents),
            p.stock_qty
        );
    }
    md.push_str("\nAdd items to the cart in the **Input** tab.\n");
    md
}

/// The cart with line totals and the grand total.
pub fn cart(cart: &CartView, pending: Option<&str>) -> String {
    let mut md = String::from("# Cart\n\n");
    if let Some(order) = pending {
        let _ = writeln!(
            md,
            "**Locked**: order {} is waiting for payment.\n",
            escape(order)
        );
    }
    if cart.items.is_empty() {
        md.push_str("Your cart is empty.\n");
        return md;
    }
    md.push_str("| SKU | Product | Qty | Unit price | Line total |\n|-----|---------|----:|-----------:|-----------:|\n");
    for item in &cart.items {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            escape(&item.sku),
            escape(&item.name),
            item.quantity,
            item.unit_price_cents,
            item.line_total_cents
        );
    }
    let _ = writeln!(md, "\n**Total**: {}", cart.total_cents);
    if pending.is_none() {
        md.push_str("\nCheck out in the **Input** tab.\n");
    }
    md
}

fn order_table(md: &mut String, orders: &[OrderSummary], with_user: bool) {
    md.push_str(if with_user {
        "| Order | User | Status | Total | Placed |\n|-------|------|--------|------:|--------|\n"
    } else {
        "| Order | Status | Total | Placed |\n|-------|--------|------:|--------|\n"
    });
    for o in orders {
        let user = if with_user {
            format!(" {} |", escape(&o.user_id))
        } else {
            String::new()
        };
        let _ = writeln!(
            md,
            "| {} |{user} {} | {} | {} |",
            escape(&o.order_id),
            o.status.label(),
            money(o.total_cents),
            escape(o.created_at.get(..19).unwrap_or(&o.created_at)).replace('T', " ")
        );
    }
}

/// The user's orders, newest first.
pub fn orders(orders: &[OrderSummary]) -> String {
    let mut md = String::from("# Orders\n\n");
    if orders.is_empty() {
        md.push_str("No orders yet.\n");
    } else {
        order_table(&mut md, orders, false);
    }
    md
}

/// Orders waiting for the admin's decision, oldest first.
pub fn approvals(pending: &[OrderSummary]) -> String {
    let mut md = String::from("# Pending Approvals\n\n");
    if pending.is_empty() {
        md.push_str("Nothing waits for approval.\n");
    } else {
        order_table(&mut md, pending, true);
    }
    md
}

/// The builds' deployments in Restate: which takes new orders, which still drain.
pub fn deployments(all: Result<&[Deployment], &str>) -> String {
    let mut md = String::from("# Builds\n\n");
    let all = match all {
        Ok(all) => all,
        Err(why) => {
            let _ = writeln!(md, "Cannot list them now: {}", escape(why));
            return md;
        }
    };
    md.push_str(
        "| Build | State | In flight | Deployment |\n|-------|-------|----------:|------------|\n",
    );
    for d in all {
        let build = d.build.as_deref().unwrap_or("(before builds)");
        let current = if d.current { " (current)" } else { "" };
        let _ = writeln!(
            md,
            "| `{}`{current} | {} | {} | `{}` |",
            escape(build),
            d.state.name(),
            d.in_flight,
            escape(&d.deployment_id)
        );
    }
    md.push_str(
        "\nAn order stays on the build it started on; an older build runs until nothing \
         is pinned to it, then its deployment and copy are removed.\n",
    );
    md
}

/// Counts per status (every status listed, zeros included) and the cart's size.
pub fn dashboard(title: &str, counts: &[(OrderStatus, i64)], cart: Option<&CartView>) -> String {
    let mut md = format!(
        "# {}\n\n| Status | Orders |\n|--------|-------:|\n",
        escape(title)
    );
    let mut total = 0;
    for status in OrderStatus::ALL {
        let n = counts
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n);
        total += n;
        let _ = writeln!(md, "| {} | {n} |", status.label());
    }
    let _ = writeln!(md, "| **All** | **{total}** |");
    if let Some(cart) = cart {
        let items: u32 = cart.items.iter().map(|i| i.quantity.get()).sum();
        let _ = writeln!(md, "\n**Cart**: {items} item(s), {}", cart.total_cents);
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

    #[test]
    fn aligned_columns_use_classes_not_inline_styles() {
        let html = to_html("| a | n |\n|---|--:|\n| x | 1 |\n");
        assert!(html.contains(r#"<td class="align-right">1</td>"#), "{html}");
        assert!(!html.contains("style="), "{html}");
        let text = to_html(&escape(r#"<td style="text-align: right">"#));
        assert!(
            text.contains(r#"&lt;td style="text-align: right"&gt;"#),
            "{text}"
        );
    }

    #[test]
    fn html_output_never_carries_raw_html() {
        let html = to_html("# Hi\n\n<script>alert(1)</script> and <b>bold</b>\n");
        assert!(html.contains("<h1>Hi</h1>"), "{html}");
        assert!(
            !html.contains("<script>") && !html.contains("<b>"),
            "{html}"
        );
        assert!(html.contains("&lt;script&gt;"), "{html}");
        let table = to_html("| a | b |\n|---|---|\n| 1 | 2 |\n");
        assert!(
            table.contains("<table>") && table.contains("<td>1</td>"),
            "{table}"
        );
    }

    #[test]
    fn user_text_in_tables_is_escaped() {
        let product = Product {
            id: 1,
            sku: "P001".into(),
            name: "Widget <img src=x onerror=alert(1)>".into(),
            description: "a | b".into(),
            price_cents: 2500,
            stock_qty: 3,
            stock_by_location: [("east".to_owned(), 3)].into(),
        };
        let html = to_html(&products(&[product]));
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains("Widget &lt;img src=x onerror=alert(1)&gt;"),
            "{html}"
        );
        assert!(html.contains("<td>a | b</td>"), "{html}");
        assert!(html.contains("$25.00"), "{html}");
    }
}
