//! Full import (a paged search under each base DN) and delta import
//! (Active Directory's `uSNChanged` with tombstones, or RFC 4533 content
//! synchronisation), streamed: never the directory in memory.

use std::collections::HashSet;
use std::sync::Arc;

use engine::{ConnectorError, ImportEvent, ImportStream};
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::controls::{
    Control, ControlType, EntryState, RawControl, RefreshMode, SyncDone, SyncInfo, SyncRequest,
    SyncState,
};
use ldap3::{Ldap, Scope, SearchEntry};

use super::conn::step_error;
use super::entry::{self, RawEntry};
use super::watermark::Watermark;
use super::Settings;
use crate::common::stream::{self, Sink, Stop};

/// Active Directory's Show Deleted control: tombstones are returned too.
const SHOW_DELETED: &str = "1.2.840.113556.1.4.417";

/// A full import: every entry of a configured type under the base DNs,
/// then the watermark taken before the first page.
pub(crate) async fn full(
    settings: Arc<Settings>,
    ldap: Ldap,
) -> Result<ImportStream, ConnectorError> {
    let mut ldap = ldap;
    let mark = current_mark(&settings, &mut ldap).await?;
    Ok(stream::spawn(move |sink| async move {
        let filter = entry::scope_filter(&settings.config);
        for base in &settings.config.base_dns {
            read(&settings, &mut ldap, &sink, base, &filter, &mut |_| {}).await?;
        }
        if let Some(mark) = mark {
            sink.event(ImportEvent::Watermark(mark.encode())).await?;
        }
        Ok(())
    }))
}

/// A delta import from `watermark` (`None`: from the beginning).
pub(crate) async fn delta(
    settings: Arc<Settings>,
    ldap: Ldap,
    watermark: Option<&str>,
) -> Result<ImportStream, ConnectorError> {
    let mut ldap = ldap;
    let stored = watermark.map(Watermark::decode).transpose()?;
    match current_mark(&settings, &mut ldap).await? {
        Some(Watermark::Usn {
            invocation_id,
            usn,
            taken_at,
        }) => {
            let since = match stored {
                None => 0,
                Some(Watermark::Usn {
                    invocation_id: was,
                    usn: then,
                    taken_at: when,
                }) => {
                    settings.check_usn_mark(&was, then, when, &invocation_id, usn, taken_at)?;
                    then
                }
                Some(_) => return Err(foreign(watermark)),
            };
            let next = Watermark::Usn {
                invocation_id,
                usn,
                taken_at,
            };
            Ok(usn_delta(settings, ldap, since, next))
        }
        Some(Watermark::Cookies(_)) => {
            let cookies = match stored {
                None => vec![None; settings.config.base_dns.len()],
                Some(Watermark::Cookies(c)) if c.len() == settings.config.base_dns.len() => c,
                Some(_) => return Err(foreign(watermark)),
            };
            Ok(syncrepl_delta(settings, ldap, cookies))
        }
        None => Err(ConnectorError::of(
            engine::ConnectorErrorKind::Configuration,
            "this LDAP connector has no delta method (`delta`); run a full import",
        )),
    }
}

fn foreign(watermark: Option<&str>) -> ConnectorError {
    ConnectorError::watermark_expired(format!(
        "the stored watermark `{}` belongs to another delta method; a full import is needed",
        watermark.unwrap_or_default()
    ))
}

/// Reads one subtree, paged, sending each entry of a configured type;
/// `seen` hears every anchor sent.
async fn read(
    settings: &Settings,
    ldap: &mut Ldap,
    sink: &Sink,
    base: &str,
    filter: &str,
    seen: &mut (dyn FnMut(&str) + Send),
) -> Result<(), Stop> {
    let config = &settings.config;
    let shown = &settings.shown;
    let attrs = entry::requested(config);
    let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
        Box::new(EntriesOnly::new()),
        Box::new(PagedResults::new(config.page_size)),
    ];
    let failed = |e| step_error(shown, &format!("cannot search under {base}"), e);
    let mut search = ldap
        .streaming_search_with(adapters, base, Scope::Subtree, filter, attrs)
        .await
        .map_err(failed)?;
    let mut ranges = ldap.clone();
    while let Some(found) = search.next().await.map_err(failed)? {
        let mut raw = RawEntry::from(SearchEntry::construct(found));
        raw.complete_ranges(&mut ranges).await.map_err(|e| {
            step_error(
                shown,
                &format!("cannot read the ranged values of {}", raw.dn),
                e,
            )
        })?;
        match entry::to_object(config, &raw) {
            Ok(Some(object)) => {
                seen(&object.anchor);
                sink.event(ImportEvent::Object(object)).await?;
            }
            Ok(None) => {}
            Err(bad) => sink.bad(bad).await?,
        }
    }
    search.finish().await.success().map_err(failed)?;
    Ok(())
}

/// The mark to resume from, read before anything else so that a change
/// made during the import is read again next time (re-reading is harmless,
/// missing is not).
async fn current_mark(
    settings: &Settings,
    ldap: &mut Ldap,
) -> Result<Option<Watermark>, ConnectorError> {
    use super::config::DeltaMethod;
    match settings.config.delta_method() {
        DeltaMethod::None => Ok(None),
        DeltaMethod::Usn => {
            let dse = settings.root_dse(ldap).await?;
            let usn = dse
                .text("highestCommittedUSN")
                .and_then(|u| u.parse().ok())
                .ok_or_else(|| settings.missing("highestCommittedUSN in the root DSE"))?;
            let service = dse
                .text("dsServiceName")
                .ok_or_else(|| settings.missing("dsServiceName in the root DSE"))?;
            let (found, _) = ldap
                .search(
                    &service,
                    Scope::Base,
                    "(objectClass=*)",
                    vec!["invocationId"],
                )
                .await
                .and_then(|r| r.success())
                .map_err(|e| step_error(&settings.shown, "cannot read the invocationId", e))?;
            let invocation_id = found
                .into_iter()
                .next()
                .map(|e| RawEntry::from(SearchEntry::construct(e)))
                .and_then(|e| e.get("invocationId").and_then(|v| v.first().cloned()))
                .and_then(|v| entry::guid_text(&v))
                .ok_or_else(|| settings.missing("the DC's invocationId"))?;
            Ok(Some(Watermark::Usn {
                invocation_id,
                usn,
                taken_at: chrono::Utc::now().timestamp(),
            }))
        }
        DeltaMethod::Syncrepl => {
            let mut cookies = Vec::new();
            for base in &settings.config.base_dns {
                // A base-scoped refresh: the cookie of the database as it is now.
                let control: RawControl = SyncRequest {
                    mode: RefreshMode::RefreshOnly,
                    cookie: None,
                    reload_hint: false,
                }
                .into();
                let result = ldap
                    .with_controls(control)
                    .search(base, Scope::Base, "(objectClass=*)", vec!["1.1"])
                    .await
                    .and_then(|r| r.success())
                    .map_err(|e| {
                        step_error(&settings.shown, "cannot start content synchronisation", e)
                    })?;
                cookies.push(sync_done(&result.1.ctrls).and_then(|d| d.cookie));
            }
            Ok(Some(Watermark::Cookies(cookies)))
        }
    }
}

fn sync_done(ctrls: &[Control]) -> Option<SyncDone> {
    ctrls.iter().find_map(|c| match c {
        Control(Some(ControlType::SyncDone), raw) => Some(raw.parse::<SyncDone>()),
        _ => None,
    })
}

/// Active Directory: what changed above `since` under the base DNs, as
/// objects; then every object of a configured class changed above `since`
/// anywhere in the domain, tombstones included, that the first search did
/// not return: deleted, moved out of the base DNs, or no longer matching
/// the filter, each a delete for the engine (which ignores anchors it does
/// not hold).
fn usn_delta(settings: Arc<Settings>, ldap: Ldap, since: u64, next: Watermark) -> ImportStream {
    let mut ldap = ldap;
    stream::spawn(move |sink| async move {
        let config = &settings.config;
        let above = format!("(uSNChanged>={})", since + 1);
        let filter = format!("(&{above}{})", entry::scope_filter(config));
        let mut seen = HashSet::new();
        for base in &config.base_dns {
            read(&settings, &mut ldap, &sink, base, &filter, &mut |a| {
                seen.insert(a.to_owned());
            })
            .await?;
        }
        let dse = settings.root_dse(&mut ldap).await?;
        let domain = dse
            .text("defaultNamingContext")
            .ok_or_else(|| settings.missing("defaultNamingContext in the root DSE"))?;
        let classes: String = config
            .object_types
            .values()
            .map(|t| {
                format!(
                    "(objectClass={})",
                    ldap3::ldap_escape(t.object_class.as_str())
                )
            })
            .collect();
        let gone = format!("(&{above}(|{classes}))");
        let anchor = config.anchor_attribute();
        let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(config.page_size)),
        ];
        let failed = |e| {
            step_error(
                &settings.shown,
                "cannot search for deleted and moved objects",
                e,
            )
        };
        let show_deleted = RawControl {
            ctype: SHOW_DELETED.into(),
            crit: true,
            val: None,
        };
        let mut search = ldap
            .with_controls(show_deleted)
            .streaming_search_with(adapters, &domain, Scope::Subtree, &gone, vec![anchor])
            .await
            .map_err(failed)?;
        while let Some(found) = search.next().await.map_err(failed)? {
            let raw = RawEntry::from(SearchEntry::construct(found));
            let Some(value) = raw.get(anchor).and_then(|v| v.first()) else {
                continue;
            };
            let Some(anchor) = entry::anchor_text(config, value) else {
                continue;
            };
            if !seen.contains(&anchor) {
                sink.event(ImportEvent::Delete { anchor }).await?;
            }
        }
        search.finish().await.success().map_err(failed)?;
        sink.event(ImportEvent::Watermark(next.encode())).await?;
        Ok(())
    })
}

/// RFC 4533, refresh only, per base DN from its cookie: added and modified
/// entries come whole, deleted ones by UUID (a delete state, or a set of
/// UUIDs). A server that can no longer replay the deletes since a cookie
/// (it answers with a present phase, or e-syncRefreshRequired) has
/// expired the watermark: never a silent gap.
fn syncrepl_delta(
    settings: Arc<Settings>,
    ldap: Ldap,
    cookies: Vec<Option<Vec<u8>>>,
) -> ImportStream {
    let mut ldap = ldap;
    stream::spawn(move |sink| async move {
        let config = &settings.config;
        let shown = &settings.shown;
        let filter = entry::scope_filter(config);
        let mut attrs = entry::requested(config);
        attrs.push("entryUUID".into());
        let mut next = Vec::new();
        for (base, cookie) in config.base_dns.iter().zip(cookies) {
            let had_cookie = cookie.is_some();
            let control: RawControl = SyncRequest {
                mode: RefreshMode::RefreshOnly,
                cookie: cookie.clone(),
                reload_hint: false,
            }
            .into();
            let failed = |e| step_error(shown, &format!("cannot synchronise {base}"), e);
            let mut search = ldap
                .with_controls(control)
                .streaming_search(base, Scope::Subtree, &filter, attrs.clone())
                .await
                .map_err(failed)?;
            let mut latest = cookie;
            let mut presents = false;
            let mut ranges = ldap.clone();
            while let Some(found) = search.next().await.map_err(failed)? {
                if found.is_intermediate() {
                    match ldap3::controls::parse_syncinfo(found) {
                        SyncInfo::NewCookie(c) => latest = Some(c),
                        SyncInfo::RefreshDelete { cookie, .. } => {
                            latest = cookie.or(latest);
                        }
                        SyncInfo::RefreshPresent { cookie, .. } => {
                            presents = true;
                            latest = cookie.or(latest);
                        }
                        SyncInfo::SyncIdSet {
                            cookie,
                            refresh_deletes,
                            sync_uuids,
                        } => {
                            latest = cookie.or(latest);
                            if refresh_deletes {
                                for uuid in sync_uuids {
                                    if let Some(anchor) = entry::uuid_text(&uuid) {
                                        sink.event(ImportEvent::Delete { anchor }).await?;
                                    }
                                }
                            } else {
                                presents = true;
                            }
                        }
                    }
                    continue;
                }
                if found.is_ref() {
                    continue;
                }
                let state = found.1.iter().find_map(|c| match c {
                    Control(Some(ControlType::SyncState), raw) => Some(raw.parse::<SyncState>()),
                    _ => None,
                });
                if let Some(state) = &state {
                    if state.cookie.is_some() {
                        latest.clone_from(&state.cookie);
                    }
                    match state.state {
                        EntryState::Delete => {
                            if let Some(anchor) = entry::uuid_text(&state.entry_uuid) {
                                sink.event(ImportEvent::Delete { anchor }).await?;
                            }
                            continue;
                        }
                        EntryState::Present => {
                            presents = true;
                            continue;
                        }
                        EntryState::Add | EntryState::Modify => {}
                    }
                }
                let mut raw = RawEntry::from(SearchEntry::construct(found));
                raw.complete_ranges(&mut ranges).await.map_err(failed)?;
                match entry::to_object(config, &raw) {
                    Ok(Some(object)) => sink.event(ImportEvent::Object(object)).await?,
                    Ok(None) => {}
                    Err(bad) => sink.bad(bad).await?,
                }
            }
            let done = search.finish().await;
            if done.rc == 53 && done.text.contains("newer than provider") {
                return Err(ConnectorError::watermark_expired(format!(
                    "{shown}: the server's content under {base} is older than the stored cookie (restored, or restarted after a crash before it saved its state); a full import is needed"
                ))
                .into());
            }
            if done.rc == 4096 {
                return Err(ConnectorError::watermark_expired(format!(
                    "{shown}: the server no longer holds the changes since the stored cookie for {base} (e-syncRefreshRequired); a full import is needed"
                ))
                .into());
            }
            let done = done.success().map_err(failed)?;
            if let Some(d) = sync_done(&done.ctrls) {
                latest = d.cookie.or(latest);
                if !d.refresh_deletes {
                    presents = true;
                }
            }
            if had_cookie && presents {
                return Err(ConnectorError::watermark_expired(format!(
                    "{shown}: the server cannot replay the deletes under {base} since the stored cookie (it answered with its present list; is syncprov's session log too short?); a full import is needed"
                ))
                .into());
            }
            next.push(latest);
        }
        sink.event(ImportEvent::Watermark(Watermark::Cookies(next).encode()))
            .await?;
        Ok(())
    })
}
