//! Full import (a paged search under each base DN) and delta import
//! (Active Directory's `uSNChanged` with tombstones, or RFC 4533 content
//! synchronisation), streamed: never the directory in memory.

use std::collections::HashSet;
use std::sync::Arc;

use engine::{ConnectorError, ConnectorErrorKind, ImportEvent, ImportStream};
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::controls::{
    Control, ControlType, EntryState, MakeCritical, RefreshMode, SyncDone, SyncInfo, SyncRequest,
    SyncState,
};
use ldap3::{Ldap, Scope};

use super::config::DeltaMethod;
use super::conn::step_error;
use super::entry::{self, RawEntry};
use super::watermark::{UsnMark, Watermark};
use super::Settings;
use crate::common::stream::{self, Sink, Stop};

/// A full import: every entry of a configured type under the base DNs,
/// then the watermark taken before the first page.
pub(crate) async fn full(
    settings: Arc<Settings>,
    ldap: Ldap,
) -> Result<ImportStream, ConnectorError> {
    let mut ldap = ldap;
    let mark = match settings.config.delta_method() {
        DeltaMethod::None => None,
        DeltaMethod::Usn => Some(Watermark::Usn(usn_mark(&settings, &mut ldap).await?)),
        DeltaMethod::Syncrepl => Some(cookie_mark(&settings, &mut ldap).await?),
    };
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
    match settings.config.delta_method() {
        DeltaMethod::Usn => {
            let next = usn_mark(&settings, &mut ldap).await?;
            let since = match stored {
                None => 0,
                Some(Watermark::Usn(was)) => {
                    settings.check_usn_mark(&was, &next)?;
                    was.usn
                }
                Some(_) => return Err(foreign(watermark)),
            };
            // Read before streaming: a DC without it fails the step before
            // any work, not after.
            let dse = settings.root_dse(&mut ldap).await?;
            let domain = dse
                .text("defaultNamingContext")
                .ok_or_else(|| settings.missing("defaultNamingContext in the root DSE"))?;
            Ok(usn_delta(settings, ldap, since, next, domain))
        }
        DeltaMethod::Syncrepl => {
            let cookies = match stored {
                None => vec![None; settings.config.base_dns.len()],
                Some(Watermark::Cookies(c))
                    if c.len() == settings.config.base_dns.len()
                        && c.iter().all(Option::is_some) =>
                {
                    c
                }
                Some(_) => return Err(foreign(watermark)),
            };
            Ok(syncrepl_delta(settings, ldap, cookies))
        }
        DeltaMethod::None => Err(ConnectorError::of(
            ConnectorErrorKind::Configuration,
            "this LDAP connector has no delta method (`delta`); run a full import",
        )),
    }
}

fn foreign(watermark: Option<&str>) -> ConnectorError {
    ConnectorError::watermark_expired(format!(
        "the stored watermark `{}` belongs to another delta method or base DN list; a full import is needed",
        watermark.unwrap_or_default()
    ))
}

/// Reads one subtree, paged, sending each entry of a configured type;
/// `seen` hears the anchor of every entry read, sent or not (an entry
/// that cannot be read is not a deleted one).
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
    let mut search = settings
        .op(ldap)
        .streaming_search_with(adapters, base, Scope::Subtree, filter, attrs)
        .await
        .map_err(failed)?;
    let mut ranges = ldap.clone();
    while let Some(found) = search.next().await.map_err(failed)? {
        let mut raw = RawEntry::parse(found).map_err(|e| settings.malformed(&e))?;
        if let Ok(anchor) = entry::anchor(config, &raw) {
            seen(&anchor);
        }
        if !raw
            .complete_ranges(settings, &mut ranges)
            .await
            .map_err(|e| {
                step_error(
                    shown,
                    &format!("cannot read the ranged values of {}", raw.dn),
                    e,
                )
            })?
        {
            // Deleted while the import ran: the next import sees it gone.
            continue;
        }
        match entry::to_object(config, &raw) {
            Ok(Some(object)) => sink.event(ImportEvent::Object(object)).await?,
            Ok(None) => {}
            Err(bad) => sink.bad(bad).await?,
        }
    }
    search.finish().await.success().map_err(failed)?;
    Ok(())
}

/// Active Directory's mark to resume from: the DC's database identity and
/// its highest committed USN, read before anything else so that a change
/// made during the import is read again next time (re-reading is
/// harmless, missing is not).
async fn usn_mark(settings: &Settings, ldap: &mut Ldap) -> Result<UsnMark, ConnectorError> {
    let dse = settings.root_dse(ldap).await?;
    let usn = dse
        .text("highestCommittedUSN")
        .and_then(|u| u.parse().ok())
        .ok_or_else(|| settings.missing("highestCommittedUSN in the root DSE"))?;
    let service = dse
        .text("dsServiceName")
        .ok_or_else(|| settings.missing("dsServiceName in the root DSE"))?;
    let (found, _) = settings
        .op(ldap)
        .search(
            &service,
            Scope::Base,
            "(objectClass=*)",
            vec!["invocationId"],
        )
        .await
        .and_then(|r| r.success())
        .map_err(|e| step_error(&settings.shown, "cannot read the invocationId", e))?;
    let mut invocation_id = None;
    for found in found {
        let entry = RawEntry::parse(found).map_err(|e| settings.malformed(&e))?;
        invocation_id = entry
            .get("invocationId")
            .and_then(|v| v.first())
            .and_then(|v| entry::guid_text(v));
    }
    Ok(UsnMark {
        invocation_id: invocation_id.ok_or_else(|| settings.missing("the DC's invocationId"))?,
        usn,
        taken_at: chrono::Utc::now().timestamp(),
    })
}

/// The RFC 4533 cookie of each base DN as the directory is now: a
/// base-scoped refresh, which returns the database's cookie. A server that
/// ignores the request (the control is critical, so it must not) or gives
/// no cookie cannot resume a delta: a configuration error.
async fn cookie_mark(settings: &Settings, ldap: &mut Ldap) -> Result<Watermark, ConnectorError> {
    let mut cookies = Vec::new();
    for base in &settings.config.base_dns {
        let request = SyncRequest {
            mode: RefreshMode::RefreshOnly,
            cookie: None,
            reload_hint: false,
        };
        let result = settings
            .op(ldap)
            .with_controls(request.critical())
            .search(base, Scope::Base, "(objectClass=*)", vec!["1.1"])
            .await
            .and_then(|r| r.success())
            .map_err(|e| step_error(&settings.shown, "cannot start content synchronisation", e))?;
        let cookie = sync_done(settings, &result.1.ctrls)?.and_then(|d| d.cookie);
        cookies.push(Some(cookie.ok_or_else(|| no_sync(settings, base))?));
    }
    Ok(Watermark::Cookies(cookies))
}

fn no_sync(settings: &Settings, base: &str) -> ConnectorError {
    ConnectorError::of(
        ConnectorErrorKind::Configuration,
        format!(
            "{}: the server gave no content synchronisation cookie for {base}: is the syncprov overlay on that database? (or set `delta = \"none\"`)",
            settings.shown
        ),
    )
}

/// The Sync Done control of a search's result, if any.
fn sync_done(settings: &Settings, ctrls: &[Control]) -> Result<Option<SyncDone>, ConnectorError> {
    for c in ctrls {
        if let Control(Some(ControlType::SyncDone), raw) = c {
            return entry::parsed(|| raw.parse::<SyncDone>())
                .map(Some)
                .ok_or_else(|| settings.malformed("a malformed Sync Done control"));
        }
    }
    Ok(None)
}

/// Active Directory: what changed above `since` under the base DNs, as
/// objects; then every object of a configured class in the domain changed
/// between `since` and the new mark, tombstones included, that the first
/// search did not read: deleted, moved out of the base DNs, or no longer
/// matching the filter, each a delete for the engine (which ignores
/// anchors it does not hold). A change after the mark is left to the next
/// delta, which reads it whole.
fn usn_delta(
    settings: Arc<Settings>,
    ldap: Ldap,
    since: u64,
    next: UsnMark,
    domain: String,
) -> ImportStream {
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
        let mark = next.usn;
        let gone = format!(
            "(&{above}(uSNChanged<={mark}){})",
            entry::classes_filter(config)
        );
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
        let mut search = settings
            .op(&mut ldap)
            .with_controls(super::conn::show_deleted())
            .streaming_search_with(adapters, &domain, Scope::Subtree, &gone, vec![anchor])
            .await
            .map_err(failed)?;
        while let Some(found) = search.next().await.map_err(failed)? {
            let raw = RawEntry::parse(found).map_err(|e| settings.malformed(&e))?;
            let Ok(anchor) = entry::anchor(config, &raw) else {
                continue;
            };
            if !seen.contains(&anchor) {
                sink.event(ImportEvent::Delete { anchor }).await?;
            }
        }
        search.finish().await.success().map_err(failed)?;
        sink.event(ImportEvent::Watermark(Watermark::Usn(next).encode()))
            .await?;
        Ok(())
    })
}

/// RFC 4533, refresh only, per base DN from its cookie: added and modified
/// entries come whole, deleted ones by UUID (a delete state, or a set of
/// UUIDs). A server that can no longer replay the deletes since a cookie
/// (it starts a present phase, or answers e-syncRefreshRequired), or whose
/// state is older than the cookie, has expired the watermark: never a
/// silent gap. A present phase stops the step at once rather than buffer
/// the directory's list of entries.
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
            let cannot_replay = || -> Stop {
                ConnectorError::watermark_expired(format!(
                    "{shown}: the server cannot replay the deletes under {base} since the stored cookie (it started a present phase; is syncprov's session log too short, or was the server restarted?); a full import is needed"
                ))
                .into()
            };
            let request = SyncRequest {
                mode: RefreshMode::RefreshOnly,
                cookie: cookie.clone(),
                reload_hint: false,
            };
            let failed = |e| step_error(shown, &format!("cannot synchronise {base}"), e);
            let mut search = settings
                .op(&mut ldap)
                .with_controls(request.critical())
                .streaming_search(base, Scope::Subtree, &filter, attrs.clone())
                .await
                .map_err(failed)?;
            let mut latest = cookie;
            let mut ranges = ldap.clone();
            while let Some(found) = search.next().await.map_err(failed)? {
                if found.is_intermediate() {
                    let info = entry::parsed(|| ldap3::controls::parse_syncinfo(found))
                        .ok_or_else(|| settings.malformed("a malformed Sync Info message"))?;
                    let present = match info {
                        SyncInfo::NewCookie(c) => {
                            latest = Some(c);
                            false
                        }
                        SyncInfo::RefreshDelete { cookie, .. } => {
                            latest = cookie.or(latest);
                            false
                        }
                        SyncInfo::RefreshPresent { cookie, .. } => {
                            latest = cookie.or(latest);
                            true
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
                            }
                            !refresh_deletes
                        }
                    };
                    if present && had_cookie {
                        return Err(cannot_replay());
                    }
                    continue;
                }
                if found.is_ref() {
                    continue;
                }
                let state = match found.1.iter().find_map(|c| match c {
                    Control(Some(ControlType::SyncState), raw) => Some(raw),
                    _ => None,
                }) {
                    Some(raw) => Some(
                        entry::parsed(|| raw.parse::<SyncState>())
                            .ok_or_else(|| settings.malformed("a malformed Sync State control"))?,
                    ),
                    None => None,
                };
                let Some(state) = state else {
                    // An entry without its sync state: the server did not
                    // run the synchronisation it accepted.
                    return Err(no_sync(&settings, base).into());
                };
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
                    EntryState::Present if had_cookie => return Err(cannot_replay()),
                    EntryState::Present => continue,
                    EntryState::Add | EntryState::Modify => {}
                }
                let mut raw = RawEntry::parse(found).map_err(|e| settings.malformed(&e))?;
                if !raw
                    .complete_ranges(&settings, &mut ranges)
                    .await
                    .map_err(failed)?
                {
                    continue;
                }
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
            let Some(sync) = sync_done(&settings, &done.ctrls)? else {
                return Err(no_sync(&settings, base).into());
            };
            latest = sync.cookie.or(latest);
            if had_cookie && !sync.refresh_deletes {
                return Err(cannot_replay());
            }
            next.push(Some(latest.ok_or_else(|| no_sync(&settings, base))?));
        }
        sink.event(ImportEvent::Watermark(Watermark::Cookies(next).encode()))
            .await?;
        Ok(())
    })
}
