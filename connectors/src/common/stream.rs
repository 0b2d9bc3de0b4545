//! An import as a stream fed by an async task through a bounded channel:
//! the connected system is never in memory as a whole, a slow consumer
//! slows the reading down, and a reader that dies (a panic) ends the stream
//! with an error rather than quietly, so a full import is never mistaken for
//! a complete one. (The CSV connector's blocking reader has its own
//! adapter, `csv::stream`.)

use std::future::Future;

use engine::{ConnectorError, ImportEvent, ImportItem, ImportStream, ItemError};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

type Item = Result<ImportItem, ConnectorError>;

/// The reader's end: `Err(Closed)` when the engine stopped listening.
#[derive(Clone)]
pub struct Sink {
    tx: mpsc::Sender<Item>,
}

/// The engine stopped listening: the reader should stop.
#[derive(Debug)]
pub struct Closed;

impl Sink {
    /// Sends a well-formed event.
    pub async fn event(&self, event: ImportEvent) -> Result<(), Closed> {
        self.tx
            .send(Ok(ImportItem::Event(event)))
            .await
            .map_err(|_| Closed)
    }

    /// Sends a bad item; the stream goes on.
    pub async fn bad(&self, error: ItemError) -> Result<(), Closed> {
        self.tx
            .send(Ok(ImportItem::Bad(error)))
            .await
            .map_err(|_| Closed)
    }
}

/// Why a reader stopped before its end.
#[derive(Debug)]
pub enum Stop {
    /// The engine stopped listening.
    Closed,
    /// A failure that ends the step: the stream's last item.
    Fatal(ConnectorError),
}

impl From<Closed> for Stop {
    fn from(_: Closed) -> Self {
        Stop::Closed
    }
}

impl From<ConnectorError> for Stop {
    fn from(e: ConnectorError) -> Self {
        Stop::Fatal(e)
    }
}

/// Runs `read` as a task and streams what it sends.
pub fn spawn<F, Fut>(read: F) -> ImportStream
where
    F: FnOnce(Sink) -> Fut,
    Fut: Future<Output = Result<(), Stop>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(256);
    let sink = Sink { tx: tx.clone() };
    let fut = read(sink);
    let task = tokio::spawn(async move {
        if let Err(Stop::Fatal(e)) = fut.await {
            let _ = tx.send(Err(e)).await;
        }
    });
    from_channel(rx, task)
}

/// The items a reader task sends, then its end: a task that panicked
/// ends the stream with an error. Shared with the CSV connector's
/// blocking reader.
pub(crate) fn from_channel(rx: mpsc::Receiver<Item>, task: JoinHandle<()>) -> ImportStream {
    futures::stream::unfold(Some((rx, task)), next).boxed()
}

async fn next(
    state: Option<(mpsc::Receiver<Item>, JoinHandle<()>)>,
) -> Option<(Item, Option<(mpsc::Receiver<Item>, JoinHandle<()>)>)> {
    let (mut rx, task) = state?;
    match rx.recv().await {
        Some(item) => Some((item, Some((rx, task)))),
        None => match task.await {
            Ok(()) => None,
            Err(e) => Some((
                Err(ConnectorError::new(format!(
                    "the import's reader failed: {e}"
                ))),
                None,
            )),
        },
    }
}
