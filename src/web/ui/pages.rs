//! What each open page shows (its view and selected order), so the page's one stream
//! can keep exactly that current. Pages are known by an id the server puts in the
//! page's signals; entries without a stream are forgotten after a while.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::web::error::{ApiError, ApiResult};

/// A page forgets its selection this long after its last stream closed.
const IDLE_LIMIT: Duration = Duration::from_secs(600);
/// At most this many pages are remembered; the longest idle go first.
const MAX_PAGES: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageId(String);

impl PageId {
    pub fn random() -> PageId {
        PageId(format!("p-{}", uuid::Uuid::new_v4().simple()))
    }

    /// 1-64 characters of `[A-Za-z0-9-]`.
    pub fn parse(s: &str) -> ApiResult<PageId> {
        let ok = (1..=64).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if ok {
            Ok(PageId(s.to_owned()))
        } else {
            Err(ApiError::bad_request(
                "invalid_page",
                "the page id must be 1-64 characters of [A-Za-z0-9-]",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The centre pane's views, one per navigation entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum View {
    #[default]
    Dashboard,
    Products,
    Cart,
    Orders,
    Admin,
}

impl View {
    pub const ALL: [View; 5] = [
        View::Dashboard,
        View::Products,
        View::Cart,
        View::Orders,
        View::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            View::Dashboard => "dashboard",
            View::Products => "products",
            View::Cart => "cart",
            View::Orders => "orders",
            View::Admin => "admin",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            View::Dashboard => "Dashboard",
            View::Products => "Products",
            View::Cart => "Cart",
            View::Orders => "Orders",
            View::Admin => "Admin",
        }
    }

    pub fn parse(s: &str) -> ApiResult<View> {
        View::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| ApiError::not_found("unknown_view", format!("no view {s}")))
    }
}

impl std::fmt::Display for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a page shows: a view and, maybe, the order its workflow pane follows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub view: View,
    pub order: Option<String>,
}

#[derive(Debug)]
struct Page {
    selection: watch::Sender<Selection>,
    streams: usize,
    idle_since: Instant,
}

/// Every open page's selection, by user and page id: a page id someone else learns
/// names nothing of theirs. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Pages(Arc<Mutex<HashMap<PageKey, Page>>>);

type PageKey = (String, PageId);

/// A stream's hold on its page: the selection to follow; released on drop.
pub struct Attached {
    pub selection: watch::Receiver<Selection>,
    pages: Pages,
    key: PageKey,
}

impl Drop for Attached {
    fn drop(&mut self) {
        let mut pages = self.pages.0.lock().expect("pages lock");
        if let Some(page) = pages.get_mut(&self.key) {
            page.streams = page.streams.saturating_sub(1);
            page.idle_since = Instant::now();
        }
    }
}

impl Pages {
    /// Records what `page` shows now; its stream follows.
    pub fn select(&self, page: &PageId, user: &str, selection: Selection) {
        let mut pages = self.0.lock().expect("pages lock");
        let key = (user.to_owned(), page.clone());
        match pages.get_mut(&key) {
            Some(entry) => {
                entry.selection.send_if_modified(|current| {
                    let changed = *current != selection;
                    *current = selection;
                    changed
                });
            }
            None => {
                sweep(&mut pages);
                pages.insert(key, Page::new(selection));
            }
        }
    }

    /// What `page` shows, or `None` when it is not known (or is another user's).
    pub fn selection(&self, page: &PageId, user: &str) -> Option<Selection> {
        let pages = self.0.lock().expect("pages lock");
        pages
            .get(&(user.to_owned(), page.clone()))
            .map(|p| p.selection.borrow().clone())
    }

    /// A stream for `page` starts: it follows the page's selection (`reported`, what
    /// the page says it shows, for a page this server has not seen, e.g. after a restart).
    pub fn attach(&self, page: &PageId, user: &str, reported: Selection) -> Attached {
        let mut pages = self.0.lock().expect("pages lock");
        let key = (user.to_owned(), page.clone());
        if !pages.contains_key(&key) {
            sweep(&mut pages);
            pages.insert(key.clone(), Page::new(reported));
        }
        let entry = pages.get_mut(&key).expect("just inserted");
        entry.streams += 1;
        Attached {
            selection: entry.selection.subscribe(),
            pages: self.clone(),
            key,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

impl Page {
    fn new(selection: Selection) -> Page {
        Page {
            selection: watch::channel(selection).0,
            streams: 0,
            idle_since: Instant::now(),
        }
    }
}

/// Forgets pages idle for too long, and the longest idle when there are too many.
fn sweep(pages: &mut HashMap<PageKey, Page>) {
    pages.retain(|_, p| p.streams > 0 || p.idle_since.elapsed() < IDLE_LIMIT);
    while pages.len() >= MAX_PAGES {
        let oldest = pages
            .iter()
            .filter(|(_, p)| p.streams == 0)
            .min_by_key(|(_, p)| p.idle_since)
            .map(|(id, _)| id.clone());
        match oldest {
            Some(id) => pages.remove(&id),
            None => break,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_ids_and_views_parse() {
        assert!(PageId::parse(PageId::random().as_str()).is_ok());
        assert!(PageId::parse("").is_err());
        assert!(PageId::parse("a'b").is_err());
        assert!(PageId::parse(&"a".repeat(65)).is_err());
        for v in View::ALL {
            assert_eq!(View::parse(v.as_str()).unwrap(), v);
        }
        assert!(View::parse("secrets").is_err());
    }

    #[test]
    fn a_stream_follows_its_pages_selection() {
        let pages = Pages::default();
        let page = PageId::random();
        let mut attached = pages.attach(&page, "alice", Selection::default());
        assert_eq!(*attached.selection.borrow(), Selection::default());
        let orders = Selection {
            view: View::Orders,
            order: Some("o1".into()),
        };
        pages.select(&page, "alice", orders.clone());
        assert!(attached.selection.has_changed().unwrap());
        assert_eq!(*attached.selection.borrow_and_update(), orders);
        // Another user cannot read or steer alice's page, even knowing its id.
        assert_eq!(pages.selection(&page, "bob"), None);
        pages.select(&page, "bob", Selection::default());
        let _bobs = pages.attach(&page, "bob", Selection::default());
        assert!(
            !attached.selection.has_changed().unwrap(),
            "alice's stream is untouched"
        );
        assert_eq!(pages.selection(&page, "alice"), Some(orders));
        drop(attached);
        assert_eq!(pages.len(), 2);
    }
}
