//! The directory: users and groups with their properties, managers and
//! members, and the change log that delta queries read.
//!
//! Every change appends to [`Directory::log`] under the next sequence
//! number; a delta token is a sequence number, and "what changed since"
//! is the log after it. Deleted objects stay in the map (soft-deleted or
//! purged) so a delta can still say what they were.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value};

use super::ids;
use super::reply::ApiError;

/// Documented properties of `microsoft.graph.user` that `$select` accepts
/// even when no user has them.
const USER_PROPERTIES: &[&str] = &[
    "id",
    "displayName",
    "givenName",
    "surname",
    "userPrincipalName",
    "mailNickname",
    "mail",
    "accountEnabled",
    "employeeId",
    "employeeType",
    "department",
    "jobTitle",
    "companyName",
    "officeLocation",
    "mobilePhone",
    "businessPhones",
    "city",
    "country",
    "usageLocation",
    "onPremisesImmutableId",
    "onPremisesSyncEnabled",
    "onPremisesSamAccountName",
    "onPremisesDistinguishedName",
    "manager",
    "createdDateTime",
    "userType",
    "preferredLanguage",
];

/// Documented properties of `microsoft.graph.group`.
const GROUP_PROPERTIES: &[&str] = &[
    "id",
    "displayName",
    "description",
    "mailNickname",
    "mailEnabled",
    "securityEnabled",
    "groupTypes",
    "mail",
    "members",
    "onPremisesSyncEnabled",
    "createdDateTime",
    "visibility",
];

/// The properties Graph returns for a user when the request has no `$select`.
const USER_DEFAULTS: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

/// Users or groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    User,
    Group,
}

impl Kind {
    /// The kind a collection segment (`users`, `groups`) names.
    pub fn from_collection(segment: &str) -> Option<Kind> {
        match segment {
            "users" => Some(Kind::User),
            "groups" => Some(Kind::Group),
            _ => None,
        }
    }

    /// `users` or `groups`.
    pub fn collection(self) -> &'static str {
        match self {
            Kind::User => "users",
            Kind::Group => "groups",
        }
    }

    /// `#microsoft.graph.user`: the `@odata.type` of a reference.
    pub fn odata_type(self) -> &'static str {
        match self {
            Kind::User => "#microsoft.graph.user",
            Kind::Group => "#microsoft.graph.group",
        }
    }

    /// `microsoft.graph.user`: the type named in `$select` errors.
    pub fn type_name(self) -> &'static str {
        &self.odata_type()[1..]
    }

    /// `User`: the resource named in validation errors.
    pub fn resource(self) -> &'static str {
        match self {
            Kind::User => "User",
            Kind::Group => "Group",
        }
    }

    /// The navigation property delta reports as `<name>@delta`.
    pub fn link(self) -> &'static str {
        match self {
            Kind::User => "manager",
            Kind::Group => "members",
        }
    }

    /// The properties returned without `$select`.
    pub fn defaults(self) -> Vec<String> {
        let names: Vec<&str> = match self {
            Kind::User => USER_DEFAULTS.to_vec(),
            Kind::Group => GROUP_PROPERTIES
                .iter()
                .copied()
                .filter(|p| *p != "members")
                .collect(),
        };
        names.into_iter().map(str::to_owned).collect()
    }

    fn documented(self) -> &'static [&'static str] {
        match self {
            Kind::User => USER_PROPERTIES,
            Kind::Group => GROUP_PROPERTIES,
        }
    }
}

/// Whether an object is live or deleted, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Life {
    Live,
    /// In the recycle bin: delta says `@removed` reason `changed`.
    SoftDeleted,
    /// Gone for good: delta says `@removed` reason `deleted`.
    Purged,
}

/// A user or group.
#[derive(Debug, Clone)]
pub(super) struct Object {
    pub id: String,
    pub kind: Kind,
    /// Properties other than `id`, `manager` and `members`.
    pub props: Map<String, Value>,
    /// `createdDateTime`, returned when selected.
    pub created: String,
    /// A user's manager.
    pub manager: Option<String>,
    /// A group's members.
    pub members: BTreeSet<String>,
    pub life: Life,
}

impl Object {
    /// Whether the object is neither soft-deleted nor purged.
    pub fn is_live(&self) -> bool {
        self.life == Life::Live
    }

    /// A property's value as Graph returns it: `null` when unset.
    pub fn value(&self, name: &str) -> Value {
        match self.props.get(name) {
            Some(v) => v.clone(),
            None if name == "id" => Value::String(self.id.clone()),
            None if name == "createdDateTime" => Value::String(self.created.clone()),
            None => Value::Null,
        }
    }

    /// The user principal name, if any.
    pub fn upn(&self) -> Option<&str> {
        self.props.get("userPrincipalName").and_then(Value::as_str)
    }

    /// `id` and every stored property: the body of a create's answer.
    pub fn entity(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("id".into(), Value::String(self.id.clone()));
        map.extend(self.props.clone());
        map
    }
}

/// One recorded change of one object.
#[derive(Debug, Clone)]
pub(super) enum Change {
    Created,
    /// A property was set, changed or cleared.
    Property(String),
    /// The manager changed; this was the one before.
    Manager {
        old: Option<String>,
    },
    /// A member was added or removed.
    Member {
        member: String,
        added: bool,
    },
    /// Soft-deleted or purged (the object's [`Life`] says which).
    Removed,
}

/// A change under its sequence number.
#[derive(Debug, Clone)]
pub(super) struct ChangeEntry {
    pub seq: u64,
    pub id: String,
    pub change: Change,
}

/// The directory.
#[derive(Debug, Default)]
pub(super) struct Directory {
    objects: HashMap<String, Object>,
    /// Ids in creation order.
    order: Vec<String>,
    /// Every change; entry `i` has sequence number `i + 1`.
    pub log: Vec<ChangeEntry>,
    /// Property names some user / group has ever had.
    seen_user: BTreeSet<String>,
    seen_group: BTreeSet<String>,
    /// The last password given to each user (never returned by reads).
    passwords: HashMap<String, String>,
    /// Live users by lowercase user principal name.
    upns: HashMap<String, String>,
}

/// Splits a request's properties into those stored and the password: drops
/// `id`, annotations (`…@odata.bind`, `@odata.type`) and `passwordProfile`.
fn stored(props: &Map<String, Value>) -> (Map<String, Value>, Option<String>) {
    let mut kept = Map::new();
    let mut password = None;
    for (name, value) in props {
        if name == "passwordProfile" {
            password = value
                .get("password")
                .and_then(Value::as_str)
                .map(str::to_owned);
        } else if name != "id" && !name.contains('@') {
            kept.insert(name.clone(), value.clone());
        }
    }
    (kept, password)
}

impl Directory {
    /// The sequence number of the last change (0 before any).
    pub fn seq(&self) -> u64 {
        self.log.len() as u64
    }

    fn record(&mut self, id: &str, change: Change) {
        let seq = self.seq() + 1;
        self.log.push(ChangeEntry {
            seq,
            id: id.to_owned(),
            change,
        });
    }

    fn note_properties<'a>(&mut self, kind: Kind, names: impl Iterator<Item = &'a String>) {
        let seen = match kind {
            Kind::User => &mut self.seen_user,
            Kind::Group => &mut self.seen_group,
        };
        seen.extend(names.cloned());
    }

    /// Whether `$select` may name `name` on `kind`.
    pub fn known_property(&self, kind: Kind, name: &str) -> bool {
        let seen = match kind {
            Kind::User => &self.seen_user,
            Kind::Group => &self.seen_group,
        };
        kind.documented().contains(&name) || seen.contains(name)
    }

    /// Any object ever created (deleted ones too).
    pub fn get(&self, id: &str) -> Option<&Object> {
        self.objects.get(id)
    }

    /// A live object of `kind`.
    pub fn live(&self, kind: Kind, id: &str) -> Option<&Object> {
        self.objects
            .get(id)
            .filter(|o| o.kind == kind && o.is_live())
    }

    /// A live object of either kind.
    pub fn live_any(&self, id: &str) -> Option<&Object> {
        self.objects.get(id).filter(|o| o.is_live())
    }

    /// A live object of `kind` by id, or a user by user principal name
    /// (`/users/{id | userPrincipalName}`).
    pub fn resolve(&self, kind: Kind, key: &str) -> Option<&Object> {
        self.live(kind, key).or_else(|| match kind {
            Kind::User => self.user_by_upn(key),
            Kind::Group => None,
        })
    }

    /// Live objects of `kind` in creation order.
    pub fn all(&self, kind: Kind) -> impl Iterator<Item = &Object> {
        self.order.iter().filter_map(move |id| self.live(kind, id))
    }

    /// The live user with this user principal name (case-insensitive).
    pub fn user_by_upn(&self, upn: &str) -> Option<&Object> {
        let id = self.upns.get(&upn.to_lowercase())?;
        self.live(Kind::User, id)
    }

    /// Keeps [`Directory::upns`] in step with a user's current state.
    fn index_upn(&mut self, id: &str, before: Option<String>) {
        if let Some(old) = before {
            if self.upns.get(&old).map(String::as_str) == Some(id) {
                self.upns.remove(&old);
            }
        }
        if let Some(upn) = self.live(Kind::User, id).and_then(Object::upn) {
            let upn = upn.to_lowercase();
            self.upns.insert(upn, id.to_owned());
        }
    }

    /// A user's lowercase user principal name, for [`Directory::index_upn`].
    fn lower_upn(&self, id: &str) -> Option<String> {
        self.get(id).and_then(Object::upn).map(str::to_lowercase)
    }

    fn upn_taken(&self, upn: &str, except: Option<&str>) -> bool {
        self.user_by_upn(upn)
            .is_some_and(|u| Some(u.id.as_str()) != except)
    }

    /// The test's view of an object: its properties with `id`, plus
    /// `manager` (users with one) or `members` (groups, sorted ids).
    pub fn view(&self, id: &str) -> Option<Value> {
        let o = self.objects.get(id).filter(|o| o.is_live())?;
        let mut map = o.entity();
        match o.kind {
            Kind::User => {
                if let Some(m) = &o.manager {
                    map.insert("manager".into(), Value::String(m.clone()));
                }
            }
            Kind::Group => {
                let members = o.members.iter().cloned().map(Value::String).collect();
                map.insert("members".into(), Value::Array(members));
            }
        }
        Some(Value::Object(map))
    }

    /// The last password set for a user.
    pub fn password(&self, id: &str) -> Option<String> {
        self.passwords.get(id).cloned()
    }

    /// Creates an object from a request's properties; returns its id.
    /// Users' principal names must be unique.
    pub fn create(&mut self, kind: Kind, props: &Map<String, Value>) -> Result<String, ApiError> {
        let (props, password) = stored(props);
        if kind == Kind::User {
            if let Some(upn) = props.get("userPrincipalName").and_then(Value::as_str) {
                if self.upn_taken(upn, None) {
                    return Err(duplicate_upn());
                }
            }
        }
        let id = ids::guid();
        self.note_properties(kind, props.keys());
        if let Some(p) = password {
            self.passwords.insert(id.clone(), p);
        }
        self.objects.insert(
            id.clone(),
            Object {
                id: id.clone(),
                kind,
                props,
                created: ids::graph_timestamp(),
                manager: None,
                members: BTreeSet::new(),
                life: Life::Live,
            },
        );
        self.order.push(id.clone());
        self.index_upn(&id, None);
        self.record(&id, Change::Created);
        Ok(id)
    }

    /// Applies a PATCH: sets properties, removes those set to `null`, and
    /// records each that changed.
    pub fn update(&mut self, id: &str, patch: &Map<String, Value>) -> Result<(), ApiError> {
        let kind = self
            .live_any(id)
            .map(|o| o.kind)
            .ok_or_else(|| ApiError::not_found(id))?;
        let (patch, password) = stored(patch);
        if kind == Kind::User {
            if let Some(upn) = patch.get("userPrincipalName").and_then(Value::as_str) {
                if self.upn_taken(upn, Some(id)) {
                    return Err(duplicate_upn());
                }
            }
        }
        self.note_properties(kind, patch.keys());
        if let Some(p) = password {
            self.passwords.insert(id.to_owned(), p);
        }
        let before = self.lower_upn(id);
        let mut changed = Vec::new();
        if let Some(o) = self.objects.get_mut(id) {
            for (name, value) in patch {
                let before = if value.is_null() {
                    o.props.remove(&name)
                } else {
                    o.props.insert(name.clone(), value.clone())
                };
                if before.unwrap_or(Value::Null) != value {
                    changed.push(name);
                }
            }
        }
        self.index_upn(id, before);
        for name in changed {
            self.record(id, Change::Property(name));
        }
        Ok(())
    }

    /// Soft-deletes (`purge` false) or hard-deletes an object. Deleting a
    /// live object also takes it out of every group and off every user it
    /// managed. A soft-deleted object can still be purged.
    pub fn remove(&mut self, id: &str, purge: bool) -> Result<(), ApiError> {
        let life = self
            .objects
            .get(id)
            .map(|o| o.life)
            .ok_or_else(|| ApiError::not_found(id))?;
        match (life, purge) {
            (Life::Live, _) => self.detach(id),
            (Life::SoftDeleted, true) => {}
            (Life::SoftDeleted, false) | (Life::Purged, _) => {
                return Err(ApiError::not_found(id));
            }
        }
        let before = self.lower_upn(id);
        if let Some(o) = self.objects.get_mut(id) {
            o.life = if purge {
                Life::Purged
            } else {
                Life::SoftDeleted
            };
        }
        self.index_upn(id, before);
        self.record(id, Change::Removed);
        Ok(())
    }

    /// Removes every reference to `id`: memberships and managers.
    fn detach(&mut self, id: &str) {
        let groups: Vec<String> = self
            .all(Kind::Group)
            .filter(|g| g.members.contains(id))
            .map(|g| g.id.clone())
            .collect();
        for g in groups {
            // Cannot fail: the group is live and `id` is a member.
            let _ = self.remove_member(&g, id);
        }
        let reports: Vec<String> = self
            .all(Kind::User)
            .filter(|u| u.manager.as_deref() == Some(id))
            .map(|u| u.id.clone())
            .collect();
        for u in reports {
            let _ = self.set_manager(&u, None);
        }
    }

    /// Sets or clears a user's manager (a live user); records the change
    /// when there is one.
    pub fn set_manager(&mut self, user: &str, manager: Option<&str>) -> Result<(), ApiError> {
        if self.live(Kind::User, user).is_none() {
            return Err(ApiError::not_found(user));
        }
        if let Some(m) = manager {
            if self.live(Kind::User, m).is_none() {
                return Err(ApiError::not_found(m));
            }
        }
        let Some(o) = self.objects.get_mut(user) else {
            return Err(ApiError::not_found(user));
        };
        let old = o.manager.clone();
        if old.as_deref() == manager {
            return Ok(());
        }
        o.manager = manager.map(str::to_owned);
        self.record(user, Change::Manager { old });
        Ok(())
    }

    /// Adds a live user or group to a live group.
    pub fn add_member(&mut self, group: &str, member: &str) -> Result<(), ApiError> {
        if self.live(Kind::Group, group).is_none() {
            return Err(ApiError::not_found(group));
        }
        if self.live_any(member).is_none() {
            return Err(ApiError::not_found(member));
        }
        if group == member {
            return Err(ApiError::bad_request(
                "Request_BadRequest",
                "A group cannot be a member of itself.",
            ));
        }
        let Some(g) = self.objects.get_mut(group) else {
            return Err(ApiError::not_found(group));
        };
        if !g.members.insert(member.to_owned()) {
            return Err(member_exists());
        }
        self.record(
            group,
            Change::Member {
                member: member.to_owned(),
                added: true,
            },
        );
        Ok(())
    }

    /// Removes a member from a live group.
    pub fn remove_member(&mut self, group: &str, member: &str) -> Result<(), ApiError> {
        let Some(g) = self
            .objects
            .get_mut(group)
            .filter(|g| g.kind == Kind::Group && g.is_live())
        else {
            return Err(ApiError::not_found(group));
        };
        if !g.members.remove(member) {
            return Err(ApiError::not_found(member));
        }
        self.record(
            group,
            Change::Member {
                member: member.to_owned(),
                added: false,
            },
        );
        Ok(())
    }
}

/// 400 for a user principal name another user has.
pub(super) fn duplicate_upn() -> ApiError {
    ApiError::bad_request(
        "Request_BadRequest",
        "Another object with the same value for property userPrincipalName already exists.",
    )
}

/// 400 for adding a member a group already has.
pub(super) fn member_exists() -> ApiError {
    ApiError::bad_request(
        "Request_BadRequest",
        "One or more added object references already exist for the following modified properties: 'members'.",
    )
}
