//! Runs a blocking reader on tokio's blocking pool and hands its items to the
//! engine as a stream, through a bounded channel: the file is never in
//! memory as a whole, and a slow consumer slows the reader down.

use engine::{ConnectorError, ImportEvent, ImportItem, ImportStream, ItemError};
use tokio::sync::mpsc;

/// How many items may wait between the reader and the engine.
const CHANNEL_CAPACITY: usize = 256;

type Item = Result<ImportItem, ConnectorError>;

/// The reader's end of the channel.
pub(crate) struct Sink {
    tx: mpsc::Sender<Item>,
}

/// Why a reader stops early.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The engine stopped listening.
    Closed,
    /// A fatal error, to send as the stream's last item.
    Fatal(ConnectorError),
}

impl From<ConnectorError> for Stop {
    fn from(error: ConnectorError) -> Self {
        Stop::Fatal(error)
    }
}

impl Sink {
    /// Sends a well-formed event.
    pub(crate) fn event(&self, event: ImportEvent) -> Result<(), Stop> {
        self.send(Ok(ImportItem::Event(event)))
    }

    /// Sends a bad item.
    pub(crate) fn bad(&self, error: ItemError) -> Result<(), Stop> {
        self.send(Ok(ImportItem::Bad(error)))
    }

    /// Ends a reader's run: a fatal error becomes the stream's last item.
    pub(crate) fn finish(&self, outcome: Result<(), Stop>) {
        if let Err(Stop::Fatal(error)) = outcome {
            // If nobody listens any more, nobody needs to hear it.
            let _ = self.send(Err(error));
        }
    }

    fn send(&self, item: Item) -> Result<(), Stop> {
        self.tx.blocking_send(item).map_err(|_| Stop::Closed)
    }
}

/// Runs `read` on the blocking pool and streams what it sends. If the reader
/// dies without finishing (a panic), the stream ends with an error rather
/// than quietly, so a full import is never mistaken for a complete one.
pub(crate) fn spawn<F>(read: F) -> ImportStream
where
    F: FnOnce(&Sink) + Send + 'static,
{
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let task = tokio::task::spawn_blocking(move || read(&Sink { tx }));
    crate::common::stream::from_channel(rx, task)
}

/// Runs a blocking function on the blocking pool.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, ConnectorError>
where
    F: FnOnce() -> Result<T, ConnectorError> + Send + 'static,
    T: Send + 'static,
{
    joined(tokio::task::spawn_blocking(f)).await
}

/// What a blocking task started earlier returned.
pub(crate) async fn joined<T>(
    task: tokio::task::JoinHandle<Result<T, ConnectorError>>,
) -> Result<T, ConnectorError> {
    task.await
        .map_err(|e| ConnectorError::new(format!("csv connector task failed: {e}")))?
}
