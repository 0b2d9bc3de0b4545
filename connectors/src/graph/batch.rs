//! Sending planned chains through Graph's JSON batching (`$batch`, at
//! most 20 requests), and mapping each answer back to its object.
//!
//! - A batch whose chains are one request each is sent fully parallel (no
//!   `dependsOn`); one holding a longer chain is sent fully serial (each
//!   request depends on the one before), the two shapes Graph documents.
//!   A failure then stops the rest of the batch (424), which is sent again
//!   in the next round.
//! - A request throttled inside a batch (429, or 503 and other transient
//!   statuses for requests that may run twice) is sent again after the
//!   longest `Retry-After` of the batch; after the configured attempts its
//!   object fails as retryable. A create is sent again only after a 429:
//!   after any other transient status it may have run, so its object fails
//!   as retryable, and the engine looks it up before sending it again.
//! - A reference write of an object created moments ago that meets 404 is
//!   sent again the same way: Graph's replicas may not know the new object
//!   yet.
//! - The batch itself failing (a lost connection, a timeout) interrupts the
//!   export: the objects already answered have results, the rest stay
//!   pending, and adds stay in flight to be looked up.

use std::time::Duration;

use engine::{ConnectorError, ExportFailure, FailureKind};
use reqwest::Method;
use serde_json::{json, Value as Json};

use super::client::{is_transient, retry_after, CallError, Resend, ServiceError};
use super::export::{failure, Tolerate, Work};
use super::GraphConnector;

/// Requests in one `$batch`: Graph's limit.
const BATCH_LIMIT: usize = 20;

/// One request's answer inside a batch answer.
struct Answer {
    status: u16,
    body: Json,
    retry_after: Option<Duration>,
}

/// What a round of answers did.
#[derive(Default)]
struct Round {
    /// Some request was applied or decided.
    progress: bool,
    /// Some request is to be sent again, after this wait when Graph gave one.
    again: Option<Option<Duration>>,
}

impl GraphConnector {
    /// Sends the chains until each is done, failed or of unknown outcome.
    pub(crate) async fn drive(&self, works: &mut [Work]) -> Result<(), ConnectorError> {
        let policy = self.client.policy();
        let mut waits = 0;
        let mut stalled = 0;
        loop {
            let picked = pack(works);
            if picked.is_empty() {
                return Ok(());
            }
            self.client.pace(picked.len()).await;
            let answers = self.send(works, &picked).await?;
            let round = self.apply(works, &picked, answers, policy.attempts);
            stalled = if round.progress { 0 } else { stalled + 1 };
            if stalled > policy.attempts {
                return Err(ConnectorError::unavailable(
                    "Graph kept answering $batch requests without applying any of them",
                ));
            }
            if let Some(hint) = round.again {
                waits += 1;
                let wait = policy.wait(waits, hint);
                tracing::warn!(
                    "Graph throttled requests of a $batch; sending them again in {} ms",
                    wait.as_millis()
                );
                tokio::time::sleep(wait).await;
            }
        }
    }

    /// Sends one batch of the picked requests; the answers by request.
    async fn send(
        &self,
        works: &[Work],
        picked: &[(usize, usize)],
    ) -> Result<Vec<Option<Answer>>, ConnectorError> {
        let serial = picked.iter().any(|&(_, s)| s > 0);
        let requests: Vec<Json> = picked
            .iter()
            .enumerate()
            .map(|(i, &(w, s))| {
                let step = &works[w].steps[s];
                let mut r = json!({"id": (i + 1).to_string(), "method": step.method.as_str(), "url": step.url});
                if let Some(body) = step.sent_body() {
                    r["body"] = body;
                    r["headers"] = json!({"Content-Type": "application/json"});
                }
                if serial && i > 0 {
                    r["dependsOn"] = json!([i.to_string()]);
                }
                r
            })
            .collect();
        let answer = self
            .client
            .call(
                Method::POST,
                &self.client.url("/$batch"),
                Some(&json!({ "requests": requests })),
                Resend::IfNotRun,
            )
            .await;
        let body = match answer {
            Ok(a) => a.body,
            Err(CallError::Transport(e)) => return Err(e),
            Err(CallError::Service(e)) => return Err(e.step_error("sending a $batch")),
        };
        let mut answers: Vec<Option<Answer>> = picked.iter().map(|_| None).collect();
        for r in body["responses"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let index = r["id"]
                .as_str()
                .and_then(|i| i.parse::<usize>().ok())
                .filter(|i| (1..=picked.len()).contains(i));
            let (Some(index), Some(status)) = (index, r["status"].as_u64()) else {
                continue;
            };
            let wait = r["headers"].as_object().and_then(|h| {
                h.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
                    .and_then(|(_, v)| retry_after(v.as_str()?))
            });
            answers[index - 1] = Some(Answer {
                status: u16::try_from(status).unwrap_or(500),
                body: r["body"].clone(),
                retry_after: wait,
            });
        }
        Ok(answers)
    }

    /// Takes each answer into its object's chain.
    fn apply(
        &self,
        works: &mut [Work],
        picked: &[(usize, usize)],
        answers: Vec<Option<Answer>>,
        attempts: u32,
    ) -> Round {
        let mut round = Round::default();
        let again =
            |round: &mut Round, work: &mut Work, wait: Option<Duration>, e: ServiceError| {
                let previous = round.again.flatten();
                round.again = Some(match (previous, wait) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                });
                work.throttled += 1;
                if work.throttled >= attempts {
                    work.failure = Some(failure(&e, None));
                    round.progress = true;
                }
            };
        // Each work's picked steps are consecutive and in chain order, so
        // the front of its chain is always the step being answered.
        for ((w, _), answer) in picked.iter().zip(answers) {
            let work = &mut works[*w];
            if work.done() {
                continue;
            }
            let Some(step) = work.steps.front() else {
                continue;
            };
            let Some(answer) = answer else {
                if step.creates {
                    work.unknown = true;
                } else {
                    let e = ServiceError::from_answer(500, &Json::Null);
                    again(&mut round, work, None, e);
                }
                continue;
            };
            let Answer {
                status,
                body,
                retry_after,
            } = answer;
            if (200..300).contains(&status) {
                round.progress = true;
                let creates = step.creates;
                work.steps.pop_front();
                if creates {
                    match body["id"].as_str() {
                        Some(id) => {
                            work.anchor = Some(id.to_owned());
                            work.created = true;
                            self.follow_create(work, id);
                        }
                        None => work.unknown = true,
                    }
                }
                continue;
            }
            if status == 424 {
                // An earlier request of the batch failed or was throttled:
                // this one did not run and goes in the next round.
                round.again.get_or_insert(None);
                continue;
            }
            let e = ServiceError::from_answer(status, &body);
            if is_transient(status) {
                if step.creates && status != 429 {
                    // It may have run: the engine looks it up first.
                    work.failure = Some(
                        ExportFailure::new(FailureKind::Retryable, e.to_string())
                            .with_code(e.code.clone()),
                    );
                    round.progress = true;
                } else {
                    again(&mut round, work, retry_after, e);
                }
                continue;
            }
            if let Tolerate::Split(group, members) = &step.tolerate {
                if status == 400 && e.message.contains("already exist") {
                    let one_by_one = self.split(group, members);
                    round.progress = true;
                    work.steps.pop_front();
                    for s in one_by_one.into_iter().rev() {
                        work.steps.push_front(s);
                    }
                    continue;
                }
            }
            let tolerated = match &step.tolerate {
                Tolerate::Present => status == 400 && e.message.contains("already exist"),
                Tolerate::Absent => status == 404,
                Tolerate::AbsentFrom(group) => status == 404 && !e.message.contains(group.as_str()),
                Tolerate::Nothing | Tolerate::Split(..) => false,
            };
            if tolerated {
                round.progress = true;
                work.steps.pop_front();
                continue;
            }
            if status == 404 && work.created {
                // Graph's replicas may not know the new object yet.
                again(&mut round, work, None, e);
                continue;
            }
            round.progress = true;
            let create = step.creates.then_some(work.object_type.as_str());
            work.failure = Some(failure(&e, create));
        }
        round
    }
}

/// The requests of the next batch, as (work, step) pairs: whole chains
/// while they fit, in order.
fn pack(works: &[Work]) -> Vec<(usize, usize)> {
    let mut picked = Vec::new();
    for (w, work) in works.iter().enumerate() {
        if work.done() {
            continue;
        }
        let room = BATCH_LIMIT - picked.len();
        if room == 0 {
            break;
        }
        picked.extend((0..work.steps.len().min(room)).map(|s| (w, s)));
    }
    picked
}
