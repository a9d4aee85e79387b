//! Knowing a source's answer again: the digest of each page of its last recorded answer.
//!
//! A source that answers byte for byte what it answered last time says nothing new, so its
//! answer is not parsed again (a million records cost about 60 ms to parse). Each page is hashed
//! as it arrives, together with the `context` of how the answer is read (the source's type,
//! prefix, warehouses, and invsync's version): an answer read differently is never taken for
//! the same. Pages are compared in order; while they match, the next page is asked for by the
//! same rule as before, since a page's body names the next. At the first page that differs,
//! the pages kept so far are parsed after all and the rest is read as usual.

use bytes::Bytes;

use super::Stock;

/// The length of one page's digest (SHA-256).
const DIGEST_LEN: usize = 32;

/// The digests of an answer's pages, in order, as stored with its snapshot.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AnswerDigest(Vec<u8>);

impl std::fmt::Debug for AnswerDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AnswerDigest({} pages)", self.pages())
    }
}

impl AnswerDigest {
    /// As stored; anything that is not a whole number of digests is no digest at all.
    pub fn from_stored(bytes: Vec<u8>) -> AnswerDigest {
        if bytes.len().is_multiple_of(DIGEST_LEN) {
            AnswerDigest(bytes)
        } else {
            AnswerDigest::default()
        }
    }

    /// To store.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// How many pages the answer had (0: none known).
    pub fn pages(&self) -> usize {
        self.0.len() / DIGEST_LEN
    }

    fn page(&self, index: usize) -> Option<&[u8]> {
        self.0.get(index * DIGEST_LEN..(index + 1) * DIGEST_LEN)
    }
}

/// What a fetch found.
#[derive(Debug)]
pub enum Fetched {
    /// Every page is what was recorded last time: nothing was parsed.
    Same,
    /// A new answer, parsed, with its digest (to be stored with the snapshot it makes).
    New(Stock, AnswerDigest),
}

/// What a fetch compares its pages with: the digest of the last recorded answer, and whom to
/// tell, once, the moment the answer is known to be new (before it is parsed: the daemon loads
/// what recording it needs meanwhile).
#[derive(Clone, Copy)]
pub struct Known<'a> {
    /// The last recorded answer's digest (empty: every answer is new).
    pub digest: &'a AnswerDigest,
    /// Called once when a page differs.
    pub on_new: &'a (dyn Fn() + Send + Sync),
}

impl<'a> Known<'a> {
    /// Compared with `digest`, telling no one.
    pub fn quietly(digest: &'a AnswerDigest) -> Known<'a> {
        Known {
            digest,
            on_new: &|| {},
        }
    }
}

/// One fetch's pages as they arrive (see the module documentation).
pub struct Pages<'a> {
    context: &'a [u8],
    known: &'a AnswerDigest,
    on_new: &'a (dyn Fn() + Send + Sync),
    digest: AnswerDigest,
    /// Pages that matched, kept until the answer is known to be the same (then dropped) or new
    /// (then parsed).
    kept: Vec<Bytes>,
    differs: bool,
}

/// What to do with a page that just arrived.
pub enum Next {
    /// It matches the last answer's page, and that answer had more: ask for the next page
    /// without parsing this one.
    Ask,
    /// It was the last answer's last page too: the whole answer is the same.
    Same,
    /// The answer is new: parse these pages (the kept ones first, then this one), and go on as
    /// usual.
    Parse(Vec<Bytes>),
}

impl<'a> Pages<'a> {
    /// A fetch compared against `known`.
    pub fn new(context: &'a [u8], known: Known<'a>) -> Pages<'a> {
        Pages {
            context,
            known: known.digest,
            on_new: known.on_new,
            digest: AnswerDigest::default(),
            kept: Vec::new(),
            differs: known.digest.pages() == 0,
        }
    }

    /// What the next page's digest is salted with: how the answer is read, and which page it
    /// is (see [`crate::http::Endpoint::send_digested`], which digests the page as it streams in).
    pub fn salt(&self) -> Vec<u8> {
        let mut salt = Vec::with_capacity(self.context.len() + 16);
        salt.extend_from_slice(&(self.context.len() as u64).to_le_bytes());
        salt.extend_from_slice(self.context);
        salt.extend_from_slice(&(self.digest.pages() as u64).to_le_bytes());
        salt
    }

    /// Takes the next page's body, digesting it here (the tests' way in; a source has its
    /// pages digested as they stream in).
    #[cfg(test)]
    async fn arrived(&mut self, body: Bytes) -> Next {
        let page = crate::http::salted_digest(&self.salt(), &body);
        self.arrived_digested(body, page).await
    }

    /// Takes the next page's body and its digest, salted with [`Pages::salt`].
    pub async fn arrived_digested(&mut self, body: Bytes, page: [u8; DIGEST_LEN]) -> Next {
        let index = self.digest.pages();
        self.digest.0.extend_from_slice(&page);
        if !self.differs && self.known.page(index) == Some(page.as_slice()) {
            if index + 1 < self.known.pages() {
                self.kept.push(body);
                return Next::Ask;
            }
            return Next::Same;
        }
        if index == 0 || !self.differs {
            (self.on_new)();
            // Whatever `on_new` spawned gets going before the parse holds this thread: a task
            // spawned from a worker waits in that worker's own slot, which no other worker takes.
            tokio::task::yield_now().await;
        }
        self.differs = true;
        let mut pages = std::mem::take(&mut self.kept);
        pages.push(body);
        Next::Parse(pages)
    }

    /// The digest of every page that arrived: the new answer's, once the last is in.
    pub fn digest(self) -> AnswerDigest {
        self.digest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(context: &[u8], known: &AnswerDigest, pages: &[&str]) -> (Vec<String>, AnswerDigest) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let told = std::sync::atomic::AtomicUsize::new(0);
        let on_new = || {
            told.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        };
        let mut seen = Pages::new(
            context,
            Known {
                digest: known,
                on_new: &on_new,
            },
        );
        let mut parsed = Vec::new();
        for (n, page) in pages.iter().enumerate() {
            let arrived = seen.arrived(Bytes::from(page.to_string()));
            match runtime.block_on(arrived) {
                Next::Ask => assert!(n + 1 < pages.len(), "asked past the last page"),
                Next::Same => {
                    assert_eq!(n + 1, pages.len(), "same before the last page");
                    assert_eq!(told.into_inner(), 0, "a same answer told as new");
                    return (parsed, AnswerDigest::default());
                }
                Next::Parse(bodies) => parsed.extend(
                    bodies
                        .iter()
                        .map(|b| String::from_utf8_lossy(b).into_owned()),
                ),
            }
        }
        let digest = seen.digest();
        assert_eq!(told.into_inner(), 1, "a new answer is told once");
        (parsed, digest)
    }

    #[test]
    fn an_answer_the_same_as_the_last_is_not_parsed_and_one_that_differs_anywhere_is_wholly() {
        let (parsed, first) = walk(b"ctx", &AnswerDigest::default(), &["a", "b", "c"]);
        assert_eq!(parsed, ["a", "b", "c"]);
        assert_eq!(first.pages(), 3);
        let (parsed, _) = walk(b"ctx", &first, &["a", "b", "c"]);
        assert!(parsed.is_empty(), "the same answer is parsed again");
        let (parsed, digest) = walk(b"ctx", &first, &["a", "b", "C"]);
        assert_eq!(
            parsed,
            ["a", "b", "C"],
            "a late change loses the earlier pages"
        );
        assert_ne!(digest, first);
        let (parsed, _) = walk(b"ctx", &first, &["A", "b", "c"]);
        assert_eq!(parsed, ["A", "b", "c"]);
        // (A page that names another page after it is another page than one that does not:
        // a walk cannot match and then be longer or shorter.)
        let (parsed, _) = walk(b"other", &first, &["a", "b", "c"]);
        assert_eq!(
            parsed,
            ["a", "b", "c"],
            "read another way, the answer is new"
        );
    }

    #[test]
    fn pages_are_told_apart_by_their_place_and_a_damaged_digest_is_none() {
        let (_, first) = walk(b"", &AnswerDigest::default(), &["x", "x"]);
        assert_ne!(first.page(0), first.page(1));
        assert_eq!(AnswerDigest::from_stored(vec![1; 33]).pages(), 0);
        assert_eq!(AnswerDigest::from_stored(first.as_bytes().to_vec()), first);
    }
}
