//! The LDAP connector through the binary, against a real OpenLDAP `slapd`
//! per test and a real Samba AD domain controller shared by the test
//! process (`directory.rs`): OpenLDAP as a source with full and RFC 4533
//! delta imports (adds, modifies, moves out of scope, deletes, an expired
//! cookie); HR provisioned into Active Directory with joiners, a mover, a
//! manager rename, a leaver disabled and moved, a rehire; hostile names in
//! DNs and filters; wrong password, an untrusted certificate, a server down.

use crate::directory::{self, Slapd, ADMIN_PASSWORD};
use crate::harness::{counter, flat, hr_csv, operations, stderr, worker, Env, Worker};

const PASSWORD_VAR: &str = "MVSYNC_TEST_LDAP_PASSWORD";

fn ca_file() -> String {
    directory::test_ca().join("ca.pem").display().to_string()
}

/// A test folder with this configuration and the directory's password.
fn env(config: &str) -> Env {
    let mut env = Env::new(config);
    env.set_var(PASSWORD_VAR, ADMIN_PASSWORD);
    env
}

/// The app account list the directory tests provision from people read
/// in a directory.
const APP_CONNECTOR: &str = r#"[connectors.app]
type = "csv"
path = "state/app.csv"
object_type = "account"
anchor = "accountName"
references = { manager = "accountName" }
columns = ["accountName", "displayName", "mail", "manager"]

"#;

/// The rule that provisions the app account list.
const APP_RULE: &str = r#"[[rules]]
name = "app-out"
direction = "outbound"
connector = "app"
mv_object_type = "person"
cs_object_type = "account"
provision = true
deprovision = "delete"
[rules.flows]
accountName = "employeeId"
displayName = "displayName"
mail = "mail"
manager = "manager"

"#;

/// The record of the last `step` (`DeltaImport`) of `connector`.
fn last_step(env: &Env, connector: &str, step: &str) -> serde_json::Value {
    env.history()
        .into_iter()
        .rev()
        .find(|r| r["connector"] == connector && r["step"] == step)
        .unwrap_or_else(|| panic!("a {step} of {connector} in the history"))
}

// ------------------------------------------------------------ OpenLDAP

/// People in OpenLDAP, flowing into the app's account list.
fn openldap_config(slapd: &Slapd, ca: &str) -> String {
    format!(
        r#"
[store]
path = "state/mvsync.db"

[metaverse.person]
deletion = "last-source"

[connectors.dir]
type = "ldap"
flavor = "openldap"
url = "ldaps://127.0.0.1:{port}"
bind_dn = "{admin}"
password = {{ env = "{PASSWORD_VAR}" }}
ca_file = "{ca}"
base_dns = ["ou=people,{base}"]
page_size = 2
[connectors.dir.object_types.person]
object_class = "inetOrgPerson"
object_classes = ["inetOrgPerson"]
attributes = ["uid", "cn", "sn", "mail", "employeeNumber", "manager"]
references = ["manager"]

{APP_CONNECTOR}[[rules]]
name = "dir-in"
direction = "inbound"
connector = "dir"
mv_object_type = "person"
precedence = 10
join = [ {{ cs = "employeeNumber", mv = "employeeId" }} ]
project = true
[rules.flows]
employeeId = "employeeNumber"
displayName = "cn"
mail = "mail"
manager = "manager"

{APP_RULE}[run_profiles.full]
steps = [
  {{ connector = "dir", step = "full-import" }},
  {{ connector = "dir", step = "full-sync" }},
  {{ connector = "app", step = "export" }},
]

[run_profiles.delta]
steps = [
  {{ connector = "dir", step = "delta-import", fallback = "full-import" }},
  {{ connector = "dir", step = "delta-sync" }},
  {{ connector = "app", step = "export" }},
]
"#,
        port = slapd.tls_port,
        admin = Slapd::ADMIN,
        base = Slapd::BASE,
    )
}

/// A person entry under `ou`.
fn person(cn: &str, number: &str, ou: &str, extra: &str) -> String {
    let rdn = rules_escape(cn);
    format!(
        "dn: cn={rdn},ou={ou},{base}\nobjectClass: inetOrgPerson\ncn: {cn}\nsn: {number}\nemployeeNumber: {number}\nmail: {number}@example.org\n{extra}\n",
        base = Slapd::BASE
    )
}

/// RFC 4514 escaping for the LDIF the test writes (the connector has its own).
fn rules_escape(value: &str) -> String {
    let mut out = String::new();
    for (i, c) in value.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            _ => out.push(c),
        }
    }
    out
}

/// The app rows by account name: (displayName, mail, manager).
fn accounts(env: &Env) -> Vec<(String, String, String, String)> {
    let mut rows: Vec<_> = env
        .csv_rows("state/app.csv")
        .into_iter()
        .map(|r| {
            (
                r["accountName"].clone(),
                r["displayName"].clone(),
                r["mail"].clone(),
                r["manager"].clone(),
            )
        })
        .collect();
    rows.sort();
    rows
}

fn row(a: &str, d: &str, m: &str, mgr: &str) -> (String, String, String, String) {
    (a.into(), d.into(), m.into(), mgr.into())
}

const HOSTILE: &str = "Müller, José + \"Jo\" <jm>; #1 \\ ok";

#[test]
fn openldap_full_and_delta_imports_follow_adds_modifies_moves_and_deletes() {
    let Some(mut slapd) = Slapd::start() else {
        return;
    };
    let tools = slapd.tools();
    let base = Slapd::BASE;
    tools.add(&format!(
        "dn: ou=people,{base}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=alumni,{base}\nobjectClass: organizationalUnit\nou: alumni\n"
    ));
    let boss_dn = format!("cn=Ada Lovelace,ou=people,{base}");
    let mut ldif = person("Ada Lovelace", "100", "people", "");
    ldif.push('\n');
    ldif.push_str(&person(
        "Grace Hopper",
        "101",
        "people",
        &format!("manager: {boss_dn}"),
    ));
    ldif.push('\n');
    ldif.push_str(&person(
        HOSTILE,
        "102",
        "people",
        &format!("manager: {boss_dn}"),
    ));
    ldif.push('\n');
    ldif.push_str(&person("Alan Turing", "103", "people", ""));
    tools.add(&ldif);
    let env = env(&openldap_config(&slapd, &ca_file()));

    env.ok(&["run", "full"]);
    assert_eq!(
        accounts(&env),
        vec![
            row("100", "Ada Lovelace", "100@example.org", ""),
            row("101", "Grace Hopper", "101@example.org", "100"),
            row("102", HOSTILE, "102@example.org", "100"),
            row("103", "Alan Turing", "103@example.org", ""),
        ],
        "a paged full import (two entries a page) reads every person, the hostile name intact and the manager as a reference"
    );

    // A modify, an add, a move out of the base DN, a delete.
    tools.modify(&format!(
        "dn: cn={},ou=people,{base}\nchangetype: modify\nreplace: mail\nmail: jose@example.org\n\n\
         dn: cn=Alan Turing,ou=people,{base}\nchangetype: modrdn\nnewrdn: cn=Alan Turing\ndeleteoldrdn: 1\nnewsuperior: ou=alumni,{base}\n\n\
         dn: cn=Grace Hopper,ou=people,{base}\nchangetype: delete\n",
        rules_escape(HOSTILE)
    ));
    tools.add(&person(
        "Katherine Johnson",
        "104",
        "people",
        &format!("manager: {boss_dn}"),
    ));

    let out = env.ok(&["run", "delta"]);
    assert!(!stderr(&out).contains("full import"), "{}", stderr(&out));
    assert_eq!(
        accounts(&env),
        vec![
            row("100", "Ada Lovelace", "100@example.org", ""),
            row("102", HOSTILE, "jose@example.org", "100"),
            row("104", "Katherine Johnson", "104@example.org", "100"),
        ],
        "the delta import saw the modify, the add, the move out of scope and the delete"
    );
    let run = last_step(&env, "dir", "DeltaImport");
    assert_eq!(
        (
            counter(&run, "import_adds"),
            counter(&run, "import_updates"),
            counter(&run, "import_deletes")
        ),
        (1, 1, 2),
        "{run}"
    );

    // Nothing changed: the next delta stages nothing.
    env.ok(&["run", "delta"]);
    let run = last_step(&env, "dir", "DeltaImport");
    assert_eq!(
        counter(&run, "import_adds")
            + counter(&run, "import_updates")
            + counter(&run, "import_deletes"),
        0,
        "{run}"
    );

    // A delete, then the server restarts and forgets its session log: the
    // next delta cannot replay the delete, says so, and the profile's
    // fallback runs a full import, which sees it.
    tools.modify(&format!(
        "dn: cn=Katherine Johnson,ou=people,{base}\nchangetype: delete\n"
    ));
    slapd.restart();
    let out = env.ok(&["run", "delta"]);
    let err = flat(&stderr(&out));
    assert!(
        err.contains("cannot replay the deletes") && err.contains("running a full import"),
        "{err}"
    );
    assert_eq!(
        accounts(&env),
        vec![
            row("100", "Ada Lovelace", "100@example.org", ""),
            row("102", HOSTILE, "jose@example.org", "100"),
        ]
    );
}

#[test]
fn ldap_failures_are_clear_errors_and_lose_nothing() {
    let Some(mut slapd) = Slapd::start() else {
        return;
    };
    let base = Slapd::BASE;
    slapd.tools().add(&format!(
        "dn: ou=people,{base}\nobjectClass: organizationalUnit\nou: people\n\n{}",
        person("Ada Lovelace", "100", "people", "")
    ));
    let config = openldap_config(&slapd, &ca_file());
    let mut env = env(&config);
    env.ok(&["run", "full"]);
    assert_eq!(accounts(&env).len(), 1);

    // Wrong password: an authentication error naming the bind DN, never the password.
    env.set_var(PASSWORD_VAR, "not-the-password");
    let out = env.expect(&["import", "dir"], 5);
    let err = flat(&stderr(&out));
    assert!(
        err.contains("cannot bind as cn=admin,dc=example,dc=org")
            && err.contains("49 invalidCredentials"),
        "{err}"
    );
    assert!(!err.contains("not-the-password"), "{err}");
    env.set_var(PASSWORD_VAR, ADMIN_PASSWORD);

    // A certificate of a CA the configuration does not trust.
    let other = tempfile::tempdir().expect("temp dir");
    directory::make_ca(other.path(), "another CA");
    env.write(
        "mvsync.toml",
        &openldap_config(&slapd, &other.path().join("ca.pem").display().to_string()),
    );
    let out = env.expect(&["import", "dir"], 5);
    let err = flat(&stderr(&out));
    assert!(err.contains("TLS certificate is not trusted"), "{err}");
    env.write("mvsync.toml", &config);

    // The server is down: the step fails after its retries, and what was
    // staged and exported stays as it was.
    slapd.kill();
    let out = env.expect(&["run", "delta"], 5);
    let err = flat(&stderr(&out));
    assert!(
        err.contains(&format!("ldaps://127.0.0.1:{}", slapd.tls_port))
            && err.contains("cannot connect"),
        "{err}"
    );
    assert_eq!(accounts(&env).len(), 1, "nothing lost");
    slapd.restart();
    slapd
        .tools()
        .add(&person("Grace Hopper", "101", "people", ""));
    env.ok(&["run", "delta"]);
    assert_eq!(
        accounts(&env).len(),
        2,
        "the next run goes on from the stored watermark"
    );
}

// ------------------------------------------------------------ Active Directory

/// HR provisioned into the test's OU of the shared Samba DC.
fn ad_config(ou: &str) -> String {
    format!(
        r#"
[store]
path = "state/mvsync.db"

[metaverse.person]
deletion = "last-source"

[connectors.hr]
type = "csv"
path = "data/hr.csv"
object_type = "worker"
anchor = "employeeId"
references = {{ managerId = "employeeId" }}

[connectors.ad]
type = "ldap"
flavor = "active-directory"
url = "ldaps://127.0.0.1:636"
bind_dn = "Administrator@TEST.LOCAL"
password = {{ env = "{PASSWORD_VAR}" }}
ca_file = "{ca}"
base_dns = ["{ou}"]
initial_password = {{ length = 20 }}
consistency_guid = true
[connectors.ad.object_types.user]
object_class = "user"
object_classes = ["top", "person", "organizationalPerson", "user"]
attributes = ["sAMAccountName", "userPrincipalName", "givenName", "sn", "displayName", "department", "manager", "userAccountControl", "employeeID", "objectGUID", "mS-DS-ConsistencyGuid"]
references = ["manager"]

[[rules]]
name = "hr-in"
direction = "inbound"
connector = "hr"
mv_object_type = "person"
precedence = 10
join = [ {{ cs = "employeeId", mv = "employeeId" }} ]
project = true
[rules.flows]
employeeId = "employeeId"
firstName = "firstName"
lastName = "lastName"
displayName = 'Join(" ", firstName, lastName)'
department = "department"
manager = "managerId"
active = 'status != "Terminated"'

[[rules]]
name = "ad-in"
direction = "inbound"
connector = "ad"
mv_object_type = "person"
precedence = 20
join = [ {{ cs = "employeeID", mv = "employeeId" }} ]
[rules.flows]
immutableId = "GuidToImmutableId(objectGUID)"

[[rules]]
name = "ad-out"
direction = "outbound"
connector = "ad"
mv_object_type = "person"
cs_object_type = "user"
provision = 'active'
deprovision = {{ disable = {{ userAccountControl = "514", dn = '"CN=" + EscapeDN(displayName) + ",OU=Leavers,{ou}"' }} }}
deprovision_on_delete = "delete"
scope = 'active'
[rules.flows]
dn = '"CN=" + EscapeDN(displayName) + "," + Switch(department, "OU=Staff,{ou}", "Sales", "OU=Sales,{ou}")'
sAMAccountName = {{ expr = 'SelectUniqueValue(Left(Lower(firstName), 1) + Lower(lastName))', initial_only = true }}
userPrincipalName = 'target.sAMAccountName + "@test.local"'
givenName = "firstName"
sn = "lastName"
displayName = "displayName"
department = "department"
manager = "manager"
employeeID = "employeeId"
userAccountControl = "512"

[run_profiles.cycle]
steps = [
  {{ connector = "hr", step = "full-import" }},
  {{ connector = "hr", step = "full-sync" }},
  {{ connector = "ad", step = "export" }},
  {{ connector = "ad", step = "delta-import", fallback = "full-import" }},
  {{ connector = "ad", step = "delta-sync" }},
]
"#,
        ca = ca_file(),
    )
}

/// The users under the OU: (sAMAccountName, DN's first RDN, parent OU,
/// department, manager's CN, userAccountControl).
fn ad_users(
    samba: &directory::Samba,
    ou: &str,
) -> Vec<(String, String, String, String, String, String)> {
    let ldif = samba.tools().search(
        ou,
        "(objectClass=user)",
        &[
            "sAMAccountName",
            "department",
            "manager",
            "userAccountControl",
        ],
    );
    let mut users = Vec::new();
    for entry in ldif.split("\n\n").filter(|e| !e.trim().is_empty()) {
        let dn = directory::ldif_values(entry, "dn")
            .pop()
            .unwrap_or_default();
        let one = |a: &str| directory::ldif_values(entry, a).pop().unwrap_or_default();
        let (rdn, parent) = dn.split_once(",OU=").unwrap_or((&dn, ""));
        let parent = parent.split(',').next().unwrap_or_default().to_owned();
        let manager = one("manager");
        let manager_cn = manager
            .strip_prefix("CN=")
            .and_then(|m| m.split(",OU=").next())
            .unwrap_or_default()
            .to_owned();
        users.push((
            one("sAMAccountName"),
            rdn.to_owned(),
            parent,
            one("department"),
            manager_cn,
            one("userAccountControl"),
        ));
    }
    users.sort();
    users
}

fn user(
    sam: &str,
    rdn: &str,
    parent: &str,
    department: &str,
    manager: &str,
    uac: &str,
) -> (String, String, String, String, String, String) {
    (
        sam.into(),
        rdn.into(),
        parent.into(),
        department.into(),
        manager.into(),
        uac.into(),
    )
}

fn staff() -> Vec<Worker> {
    vec![
        worker("E1", "Ada", "Lovelace"),
        worker("E2", "Grace", "Hopper").manager("E1"),
        worker("E3", "Alan", "Turing").manager("E1"),
    ]
}

#[test]
fn hr_provisions_active_directory_joiner_mover_rename_leaver_rehire() {
    let Some(samba) = directory::samba() else {
        return;
    };
    let ou = samba.ou("t-hr", &["Staff", "Sales", "Leavers"]);
    let env = env(&ad_config(&ou));
    env.write("data/hr.csv", &hr_csv(&staff()));

    // Joiners: added with a password over LDAPS, enabled, managers by DN.
    env.ok(&["run", "cycle"]);
    assert_eq!(
        ad_users(samba, &ou),
        vec![
            user(
                "alovelace",
                "CN=Ada Lovelace",
                "Staff",
                "Engineering",
                "",
                "512"
            ),
            user(
                "aturing",
                "CN=Alan Turing",
                "Staff",
                "Engineering",
                "Ada Lovelace",
                "512"
            ),
            user(
                "ghopper",
                "CN=Grace Hopper",
                "Staff",
                "Engineering",
                "Ada Lovelace",
                "512"
            ),
        ]
    );
    assert!(
        env.preview().is_empty(),
        "the confirming import settled every export: {:?}",
        env.preview()
    );
    let guid = samba
        .tools()
        .values(
            &format!("CN=Ada Lovelace,OU=Staff,{ou}"),
            "mS-DS-ConsistencyGuid",
        )
        .expect("Ada's entry");
    assert_eq!(
        guid.len(),
        1,
        "mS-DS-ConsistencyGuid written on provisioning"
    );

    // A mover (to Sales: an OU move) and a manager rename (Ada marries):
    // AD rewrites the reports' manager itself, so only the rename is exported.
    let mut workers = staff();
    workers[2] = worker("E3", "Alan", "Turing")
        .manager("E1")
        .department("Sales");
    workers[0] = worker("E1", "Ada", "King");
    env.write("data/hr.csv", &hr_csv(&workers));
    env.ok(&["run", "cycle"]);
    assert_eq!(
        ad_users(samba, &ou),
        vec![
            user(
                "alovelace",
                "CN=Ada King",
                "Staff",
                "Engineering",
                "",
                "512"
            ),
            user(
                "aturing",
                "CN=Alan Turing",
                "Sales",
                "Sales",
                "Ada King",
                "512"
            ),
            user(
                "ghopper",
                "CN=Grace Hopper",
                "Staff",
                "Engineering",
                "Ada King",
                "512"
            ),
        ]
    );
    assert!(env.preview().is_empty(), "{:?}", env.preview());

    // A leaver: disabled and moved to Leavers, kept.
    workers[1] = worker("E2", "Grace", "Hopper").manager("E1").terminated();
    env.write("data/hr.csv", &hr_csv(&workers));
    env.ok(&["run", "cycle"]);
    let users = ad_users(samba, &ou);
    assert!(
        users.contains(&user(
            "ghopper",
            "CN=Grace Hopper",
            "Leavers",
            "Engineering",
            "Ada King",
            "514"
        )),
        "{users:?}"
    );
    assert!(
        env.preview().is_empty(),
        "a disabled account confirms as 514: {:?}",
        env.preview()
    );

    // The rehire: enabled again and back in Staff, the same account.
    workers[1] = worker("E2", "Grace", "Hopper").manager("E1");
    env.write("data/hr.csv", &hr_csv(&workers));
    env.ok(&["run", "cycle"]);
    let users = ad_users(samba, &ou);
    assert!(
        users.contains(&user(
            "ghopper",
            "CN=Grace Hopper",
            "Staff",
            "Engineering",
            "Ada King",
            "512"
        )),
        "{users:?}"
    );
    assert_eq!(users.len(), 3, "{users:?}");

    // A worker removed from HR: the account is deleted, even though an
    // administrator moved it since the last import (found by its anchor).
    samba.tools().modify(&format!(
        "dn: CN=Alan Turing,OU=Sales,{ou}\nchangetype: modrdn\nnewrdn: CN=Alan Turing\ndeleteoldrdn: 1\nnewsuperior: OU=Staff,{ou}\n"
    ));
    workers.remove(2);
    env.write("data/hr.csv", &hr_csv(&workers));
    env.ok(&["run", "cycle"]);
    let users = ad_users(samba, &ou);
    assert_eq!(users.len(), 2, "{users:?}");
    assert!(users.iter().all(|u| u.0 != "aturing"), "{users:?}");
    assert!(env.preview().is_empty(), "{:?}", env.preview());
}

/// The number of users under `ou`, and their sAMAccountNames.
fn sam_names(samba: &directory::Samba, ou: &str) -> Vec<String> {
    let ldif = samba
        .tools()
        .search(ou, "(objectClass=user)", &["sAMAccountName"]);
    let mut names = directory::ldif_values(&ldif, "sAMAccountName");
    names.sort();
    names
}

#[test]
fn ad_account_added_without_a_password_confirms_although_ad_adds_passwd_notreqd() {
    let Some(samba) = directory::samba() else {
        return;
    };
    let ou = samba.ou("t-notreqd", &["Staff", "Sales", "Leavers"]);
    // Every account disabled, then AD sets PASSWD_NOTREQD on one (as it
    // does on an account without a password: 514 reads back as 546). The
    // exported 514 stays confirmed, and nothing is exported again.
    // (Account names of its own: the domain is shared with other tests.)
    let config = ad_config(&ou)
        .replace(
            "userAccountControl = \"512\"",
            "userAccountControl = \"514\"",
        )
        .replace(
            "SelectUniqueValue(Left(Lower(firstName), 1) + Lower(lastName))",
            "SelectUniqueValue(\"nr\" + Lower(employeeId))",
        );
    let env = env(&config);
    env.write("data/hr.csv", &hr_csv(&staff()));
    env.ok(&["run", "cycle"]);
    let ada = format!("CN=Ada Lovelace,OU=Staff,{ou}");
    samba.tools().modify(&format!(
        "dn: {ada}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 546\n"
    ));
    env.ok(&["run", "cycle"]);
    assert!(env.preview().is_empty(), "{:?}", env.preview());
    let errors: u64 = env.history().iter().map(|r| counter(r, "errors")).sum();
    assert_eq!(errors, 0, "no exported-change-not-reimported");
    let exported: u64 = env
        .history()
        .iter()
        .filter(|r| r["step"] == "Export")
        .map(|r| counter(r, "export_updates"))
        .sum();
    assert_eq!(exported, 0, "no export of 514 over AD's 546");
    let uac = samba
        .tools()
        .values(&ada, "userAccountControl")
        .expect("Ada");
    assert_eq!(uac, ["546"], "AD's bit is left as AD set it");
}

/// AD as a source: users read from the test's OU.
fn ad_source_config(ou: &str) -> String {
    format!(
        r#"
[store]
path = "state/mvsync.db"

[connectors.ad]
type = "ldap"
flavor = "active-directory"
url = "ldap://127.0.0.1:389"
bind_dn = "Administrator@TEST.LOCAL"
password = {{ env = "{PASSWORD_VAR}" }}
ca_file = "{ca}"
base_dns = ["OU=In,{ou}"]
filter = "(!(objectClass=computer))"
page_size = 7
[connectors.ad.object_types.user]
object_class = "user"
attributes = ["sAMAccountName", "displayName", "employeeID", "manager", "objectSid", "objectGUID"]
references = ["manager"]
binary = ["objectSid"]

{APP_CONNECTOR}[[rules]]
name = "ad-in"
direction = "inbound"
connector = "ad"
mv_object_type = "person"
precedence = 10
join = [ {{ cs = "employeeID", mv = "employeeId" }} ]
project = true
[rules.flows]
employeeId = "employeeID"
displayName = "displayName"
mail = 'sAMAccountName + "@test.local"'
manager = "manager"
immutableId = "GuidToImmutableId(objectGUID)"

{APP_RULE}[run_profiles.full]
steps = [
  {{ connector = "ad", step = "full-import" }},
  {{ connector = "ad", step = "full-sync" }},
  {{ connector = "app", step = "export" }},
]

[run_profiles.delta]
steps = [
  {{ connector = "ad", step = "delta-import" }},
  {{ connector = "ad", step = "delta-sync" }},
  {{ connector = "app", step = "export" }},
]
"#,
        ca = ca_file(),
    )
}

/// An AD user entry under `parent`.
fn ad_user(cn: &str, sam: &str, id: &str, parent: &str, extra: &str) -> String {
    format!(
        "dn: CN={},{parent}\nobjectClass: user\nsAMAccountName: {sam}\ndisplayName: {cn}\nemployeeID: {id}\n{extra}\n",
        rules_escape(cn)
    )
}

#[test]
fn ad_full_and_usn_delta_imports_over_starttls_see_adds_modifies_moves_and_deletes() {
    let Some(samba) = directory::samba() else {
        return;
    };
    let ou = samba.ou("t-source", &["In", "Out"]);
    let tools = samba.tools();
    let inside = format!("OU=In,{ou}");
    let boss = format!("CN=Ada Lovelace,{inside}");
    let mut ldif = ad_user("Ada Lovelace", "ada", "100", &inside, "");
    for (i, name) in [HOSTILE, "Grace Hopper", "Alan Turing"].iter().enumerate() {
        ldif.push('\n');
        ldif.push_str(&ad_user(
            name,
            &format!("u{i}"),
            &format!("10{}", i + 1),
            &inside,
            &format!("manager: {boss}"),
        ));
    }
    tools.add(&ldif);
    let env = env(&ad_source_config(&ou));
    env.ok(&["run", "full"]);
    assert_eq!(
        accounts(&env),
        vec![
            row("100", "Ada Lovelace", "ada@test.local", ""),
            row("101", HOSTILE, "u0@test.local", "100"),
            row("102", "Grace Hopper", "u1@test.local", "100"),
            row("103", "Alan Turing", "u2@test.local", "100"),
        ]
    );
    let cs = env.show_cs("ad", &first_anchor(&env, "100")).to_string();
    assert!(cs.contains("objectSid"), "binary attributes are kept: {cs}");

    // A modify, an add, a move out of the base DN, a delete.
    tools.modify(&format!(
        "dn: CN={},{inside}\nchangetype: modify\nreplace: displayName\ndisplayName: José Müller\n\n\
         dn: CN=Grace Hopper,{inside}\nchangetype: modrdn\nnewrdn: CN=Grace Hopper\ndeleteoldrdn: 1\nnewsuperior: OU=Out,{ou}\n\n\
         dn: CN=Alan Turing,{inside}\nchangetype: delete\n",
        rules_escape(HOSTILE)
    ));
    tools.add(&ad_user(
        "Katherine Johnson",
        "kj",
        "104",
        &inside,
        &format!("manager: {boss}"),
    ));
    env.ok(&["run", "delta"]);
    assert_eq!(
        accounts(&env),
        vec![
            row("100", "Ada Lovelace", "ada@test.local", ""),
            row("101", "José Müller", "u0@test.local", "100"),
            row("104", "Katherine Johnson", "kj@test.local", "100"),
        ],
        "the uSN delta saw the modify, the add, the move out and the tombstone"
    );
    let run = last_step(&env, "ad", "DeltaImport");
    assert_eq!(
        (
            counter(&run, "import_adds"),
            counter(&run, "import_updates"),
            counter(&run, "import_deletes")
        ),
        (1, 1, 2),
        "{run}"
    );
    // Nothing changed: the next delta reads nothing.
    env.ok(&["run", "delta"]);
    let run = last_step(&env, "ad", "DeltaImport");
    assert_eq!(
        counter(&run, "import_updates") + counter(&run, "import_adds"),
        0,
        "{run}"
    );
}

/// The anchor of the AD object joined to the person with this employee id.
fn first_anchor(env: &Env, employee_id: &str) -> String {
    let mv = env.json(&["show", "cs", "app", employee_id]);
    let text = mv.to_string();
    let person = mv["link"][0]
        .as_u64()
        .unwrap_or_else(|| panic!("a metaverse link in {text}"));
    let person = env.json(&["show", "mv", &person.to_string()]);
    person["links"]
        .as_array()
        .and_then(|links| {
            links
                .iter()
                .find(|l| l["connector"] == "ad")
                .and_then(|l| l["object"].as_str().map(str::to_owned))
        })
        .unwrap_or_else(|| panic!("an ad link in {person}"))
}

#[test]
fn ad_export_killed_midway_then_rerun_creates_nothing_twice() {
    let Some(samba) = directory::samba() else {
        return;
    };
    let ou = samba.ou("t-crash", &["Staff", "Sales", "Leavers"]);
    let env = env(&ad_config(&ou));
    let workers: Vec<Worker> = (0..150)
        .map(|i| worker(&format!("E{i:03}"), "Worker", &format!("Number{i:03}")))
        .collect();
    env.write("data/hr.csv", &hr_csv(&workers));
    env.ok(&["import", "hr"]);
    env.ok(&["sync", "hr"]);
    let mut export = env.spawn(&["export", "ad"], std::process::Stdio::null());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let done = sam_names(samba, &ou).len();
        if done >= 20 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the export made no progress"
        );
        assert!(
            export.try_wait().ok().flatten().is_none(),
            "the export ended before it could be killed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    export.kill().expect("kill the export");
    let _ = export.wait();
    let before = sam_names(samba, &ou).len();
    assert!(before < 150, "killed midway: {before} of 150");

    env.ok(&["run", "cycle"]);
    let names = sam_names(samba, &ou);
    assert_eq!(names.len(), 150, "{names:?}");
    let mut unique = names.clone();
    unique.dedup();
    assert_eq!(unique.len(), 150, "no account twice: {names:?}");
    assert!(env.preview().is_empty(), "{:?}", env.preview());
    env.ok(&["check"]);
}

#[test]
fn ad_export_escapes_hostile_names_and_adopts_an_entry_that_already_exists() {
    let Some(samba) = directory::samba() else {
        return;
    };
    let ou = samba.ou("t-names", &["Staff", "Sales", "Leavers"]);
    // An administrator created Ada's account by hand before mvsync ran.
    let ada = format!("CN=Ada Lovelace,OU=Staff,{ou}");
    samba.tools().add(&format!(
        "dn: {ada}\nobjectClass: user\nsAMAccountName: ada.by.hand\n"
    ));
    let guid_before = samba.tools().values(&ada, "objectGUID").expect("Ada");
    let config = ad_config(&ou).replace(
        "SelectUniqueValue(Left(Lower(firstName), 1) + Lower(lastName))",
        "SelectUniqueValue(\"u\" + Lower(employeeId))",
    );
    let env = env(&config);
    let workers = vec![
        worker("E1", "Ada", "Lovelace"),
        worker("E2", "José", "Müller, \"Jo\" + <jm>; #1 \\ ok").manager("E1"),
        worker("E3", "#Zoë", "Ørsted=").manager("E2"),
    ];
    env.write("data/hr.csv", &hr_csv(&workers));
    env.ok(&["run", "cycle"]);
    // A second cycle: the adopted entry brought in step.
    env.ok(&["run", "cycle"]);
    let users = ad_users(samba, &ou);
    assert_eq!(
        users,
        vec![
            user(
                "ada.by.hand",
                "CN=Ada Lovelace",
                "Staff",
                "Engineering",
                "",
                "512"
            ),
            user(
                "ue2",
                "CN=José Müller\\, \\\"Jo\\\" \\+ \\<jm\\>\\3B \\#1 \\\\ ok",
                "Staff",
                "Engineering",
                "Ada Lovelace",
                "512"
            ),
            user(
                "ue3",
                "CN=\\#Zoë Ørsted\\3D",
                "Staff",
                "Engineering",
                "José Müller\\, \\\"Jo\\\" \\+ \\<jm\\>\\3B \\#1 \\\\ ok",
                "512"
            ),
        ]
    );
    assert_eq!(
        samba.tools().values(&ada, "objectGUID").expect("Ada"),
        guid_before,
        "the existing entry was adopted, not replaced"
    );
    assert!(env.preview().is_empty(), "{:?}", env.preview());
}

#[test]
fn ad_add_clashing_with_an_account_name_outside_the_base_is_refused_not_adopted() {
    let Some(samba) = directory::samba() else {
        return;
    };
    let ou = samba.ou("t-clash", &["Staff", "Sales", "Leavers"]);
    let elsewhere = samba.ou("t-clash-elsewhere", &[]);
    // Another team's account holds the name mvsync will choose: AD's
    // sAMAccountName is unique in the domain, beyond the connector's base.
    samba.tools().add(&format!(
        "dn: CN=Someone Else,{elsewhere}\nobjectClass: user\nsAMAccountName: clash-e1\n"
    ));
    let config = ad_config(&ou).replace(
        "SelectUniqueValue(Left(Lower(firstName), 1) + Lower(lastName))",
        "SelectUniqueValue(\"clash-\" + Lower(employeeId))",
    );
    let env = env(&config);
    env.write("data/hr.csv", &hr_csv(&[worker("E1", "Ada", "Lovelace")]));
    let out = env.expect(&["run", "cycle"], 3);
    let text = flat(&crate::harness::stdout(&out));
    assert!(
        text.contains("export-rejected")
            && text.contains("another entry already holds one of this object's unique values"),
        "{text}"
    );
    assert!(
        ad_users(samba, &ou).is_empty(),
        "nothing created, nothing adopted"
    );
    let ada = env.json(&["show", "mv", "1"]).to_string();
    assert!(
        ada.contains("\"connector\":\"ad\""),
        "the refused account stays linked and pending, for the operator to fix: {ada}"
    );
}

/// A GUID's text form from `objectGUID`'s bytes (Windows' byte order).
fn guid_text(b: &[u8]) -> String {
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{}",
        b[3],
        b[2],
        b[1],
        b[0],
        b[5],
        b[4],
        b[7],
        b[6],
        b[8..10]
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
            + "-"
            + &b[10..16]
                .iter()
                .map(|x| format!("{x:02x}"))
                .collect::<String>()
    )
}

#[test]
fn ad_full_import_of_5000_users_and_a_group_of_3000_members() {
    let Some(samba) = directory::samba() else {
        return;
    };
    let ou = samba.ou("t-bulk", &["Users", "Groups"]);
    let mut ldif = String::new();
    for i in 0..5000 {
        ldif.push_str(&format!(
            "dn: CN=Bulk User {i:04},OU=Users,{ou}\nobjectClass: user\nsAMAccountName: bulk{i:04}\n\n"
        ));
    }
    ldif.push_str(&format!(
        "dn: CN=Big Group,OU=Groups,{ou}\nobjectClass: group\nsAMAccountName: bulk-big-group\n"
    ));
    for i in 0..3000 {
        ldif.push_str(&format!("member: CN=Bulk User {i:04},OU=Users,{ou}\n"));
    }
    samba.tools().add(&ldif);
    let config = format!(
        r#"
[store]
path = "state/mvsync.db"

[connectors.ad]
type = "ldap"
flavor = "active-directory"
url = "ldaps://127.0.0.1:636"
bind_dn = "Administrator@TEST.LOCAL"
password = {{ env = "{PASSWORD_VAR}" }}
ca_file = "{ca}"
base_dns = ["OU=Users,{ou}", "OU=Groups,{ou}"]
[connectors.ad.object_types.user]
object_class = "user"
attributes = ["sAMAccountName"]
[connectors.ad.object_types.group]
object_class = "group"
attributes = ["sAMAccountName", "member"]
references = ["member"]
multi_valued = ["member"]
"#,
        ca = ca_file(),
    );
    let env = env(&config);
    env.ok(&["import", "ad", "--full"]);
    let run = env.last_run();
    assert_eq!(counter(&run, "import_adds"), 5001, "{run}");

    let ldif = samba.tools().search(
        &format!("OU=Groups,{ou}"),
        "(objectClass=group)",
        &["objectGUID"],
    );
    let guid = ldif
        .lines()
        .find_map(|l| l.strip_prefix("objectGUID:: "))
        .expect("the group's objectGUID");
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(guid)
        .expect("base64");
    let group = env.show_cs("ad", &guid_text(&bytes));
    // Staged by the import: the pending import's attributes.
    let members = group["pending_import"][1]
        .as_array()
        .and_then(|attrs| attrs.iter().find(|a| a[0] == "member"))
        .and_then(|a| a[1].as_array())
        .map_or(0, Vec::len);
    let shown: String = group.to_string().chars().take(600).collect();
    assert_eq!(members, 3000, "every member, as a reference: {shown}");
}

#[test]
fn hr_to_ad_sample_provisions_the_quickstart_people() {
    let Some(samba) = directory::samba() else {
        return;
    };
    let ou = samba.ou("t-sample", &["Staff", "Sales", "Leavers"]);
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/hr-to-ad");
    let config = std::fs::read_to_string(sample.join("mvsync.toml"))
        .expect("the sample's configuration")
        .replace("OU=mvsync,DC=corp,DC=example", &ou)
        .replace("Administrator@CORP.EXAMPLE", "Administrator@TEST.LOCAL")
        .replace("state/samba/tls/ca.pem", &ca_file())
        .replace("MVSYNC_AD_PASSWORD", PASSWORD_VAR)
        // Account names of its own: the domain is shared with other tests.
        .replace(
            "NormalizeDiacritics(Lower(lastName))",
            "NormalizeDiacritics(Lower(lastName)) + \"-s\"",
        );
    let env = env(&config);
    env.write(
        "data/hr.csv",
        &std::fs::read_to_string(sample.join("data/hr.csv")).expect("the sample's HR file"),
    );
    let checked = flat(&crate::harness::stdout(&env.ok(&["test-connection", "ad"])));
    for line in [
        "bound as Administrator@TEST.LOCAL",
        "the server offers Show Deleted",
        "deleted objects (tombstones) are readable",
    ] {
        assert!(checked.contains(line), "{line}: {checked}");
    }
    let out = env.ok(&["run", "cycle"]);
    let text = flat(&crate::harness::stdout(&out));
    assert!(
        text.contains("export ad: success (export-adds=20)"),
        "{text}"
    );
    assert!(env.preview().is_empty(), "{:?}", env.preview());
    let users = ad_users(samba, &ou);
    assert_eq!(users.len(), 20, "{users:?}");
    let sales = users.iter().filter(|u| u.2 == "Sales").count();
    assert_eq!(sales, 5, "the Sales people in OU=Sales: {users:?}");
}

#[test]
fn openldap_server_killed_mid_import_fails_the_step_and_the_next_run_completes() {
    let Some(mut slapd) = Slapd::start() else {
        return;
    };
    let base = Slapd::BASE;
    let mut ldif = format!("dn: ou=people,{base}\nobjectClass: organizationalUnit\nou: people\n\n");
    for i in 0..10_000 {
        ldif.push_str(&person(
            &format!("Person {i:05}"),
            &format!("{i:05}"),
            "people",
            "",
        ));
        ldif.push('\n');
    }
    slapd.tools().add(&ldif);
    let config = openldap_config(&slapd, &ca_file()).replace("page_size = 2", "page_size = 5");
    let env = env(&config);
    let mut import = env.spawn(&["import", "dir", "--full"], std::process::Stdio::null());
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert!(
        import.try_wait().ok().flatten().is_none(),
        "the import ended before the server could be stopped under it"
    );
    slapd.kill();
    let status = import.wait().expect("the import's exit");
    assert_eq!(status.code(), Some(5), "the step failed");
    let run = env.last_run();
    let failure = run["status"]["Failed"].as_str().unwrap_or_default();
    assert!(
        failure.contains("cannot search under ou=people,dc=example,dc=org")
            && failure.contains("the connection was lost"),
        "{run}"
    );
    assert!(counter(&run, "import_adds") > 0, "killed mid-import: {run}");

    slapd.restart();
    env.ok(&["run", "full"]);
    assert_eq!(accounts(&env).len(), 10_000, "every person, none twice");
    env.ok(&["check"]);
}

#[test]
fn ad_two_domains_routed_by_department_with_forest_wide_unique_names() {
    let Some(samba) = directory::samba() else {
        return;
    };
    // Two connectors, one per domain; the test DC stands in for both,
    // each under an OU of its own.
    let a = samba.ou("t-dom-a", &["Staff", "Sales", "Leavers"]);
    let b = samba.ou("t-dom-b", &["Staff", "Sales", "Leavers"]);
    let one = ad_config(&a);
    let start = one.find("[connectors.ad]").expect("the ad connector");
    let end = one.find("[[rules]]").expect("the rules");
    let connector_b = one[start..end]
        .replace("[connectors.ad]", "[connectors.adb]")
        .replace(
            "[connectors.ad.object_types.user]",
            "[connectors.adb.object_types.user]",
        )
        .replace(&a, &b);
    let rule_start = one
        .find("[[rules]]\nname = \"ad-out\"")
        .expect("the ad-out rule");
    let rule_end = one.find("[run_profiles.cycle]").expect("the profile");
    let unique = "SelectUniqueValue(Left(Lower(firstName), 1) + Lower(lastName), Left(Lower(firstName), 2) + Lower(lastName))";
    let rule_a = one[rule_start..rule_end]
        .replace(
            "scope = 'active'",
            "scope = 'active && department != \"Sales\"'\nunique_in = [\"adb\"]",
        )
        .replace(
            "SelectUniqueValue(Left(Lower(firstName), 1) + Lower(lastName))",
            unique,
        );
    let rule_b = rule_a
        .replace("name = \"ad-out\"", "name = \"adb-out\"")
        .replace("connector = \"ad\"", "connector = \"adb\"")
        .replace("department != \"Sales\"", "department == \"Sales\"")
        .replace("unique_in = [\"adb\"]", "unique_in = [\"ad\"]")
        .replace(&a, &b);
    let config = format!(
        "{}{connector_b}{}{rule_a}{rule_b}[run_profiles.cycle]\nsteps = [\n  {{ connector = \"hr\", step = \"full-import\" }},\n  {{ connector = \"hr\", step = \"full-sync\" }},\n  {{ connector = \"ad\", step = \"export\" }},\n  {{ connector = \"adb\", step = \"export\" }},\n  {{ connector = \"ad\", step = \"full-import\" }},\n  {{ connector = \"adb\", step = \"full-import\" }},\n  {{ connector = \"ad\", step = \"full-sync\" }},\n  {{ connector = \"adb\", step = \"full-sync\" }},\n]\n",
        &one[..end],
        &one[end..rule_start],
    );
    let env = env(&config);
    env.write(
        "data/hr.csv",
        &hr_csv(&[
            worker("D1", "John", "Smithee"),
            worker("D2", "Jane", "Smithee").department("Sales"),
        ]),
    );
    env.ok(&["run", "cycle"]);
    let in_a = ad_users(samba, &a);
    let in_b = ad_users(samba, &b);
    assert_eq!(
        (in_a, in_b),
        (
            vec![user(
                "jsmithee",
                "CN=John Smithee",
                "Staff",
                "Engineering",
                "",
                "512"
            )],
            vec![user(
                "jasmithee",
                "CN=Jane Smithee",
                "Sales",
                "Sales",
                "",
                "512"
            )],
        ),
        "routed by department; the second J. Smithee's name is unique across both domains"
    );
    assert!(env.preview().is_empty(), "{:?}", env.preview());
}

#[test]
fn ad_cutover_sample_previews_no_delete_and_the_unmatched_adds() {
    let Some(samba) = directory::samba() else {
        return;
    };
    let ou = samba.ou("t-cutover", &[]);
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/ad-cutover");
    let read = |f: &str| std::fs::read_to_string(sample.join(f)).expect("a sample file");
    let seed = read("data/ad-users.ldif");
    // The OU exists already (the test's own); the users go under it.
    let users = seed
        .split_once("\n\n")
        .map(|(_, users)| users)
        .expect("the OU entry, then the users")
        .replace("OU=cutover,DC=corp,DC=example", &ou);
    samba.tools().add(&users);
    let config = read("mvsync.toml")
        .replace("OU=cutover,DC=corp,DC=example", &ou)
        .replace("Administrator@CORP.EXAMPLE", "Administrator@TEST.LOCAL")
        .replace("../hr-to-ad/state/samba/tls/ca.pem", &ca_file())
        .replace("MVSYNC_AD_PASSWORD", PASSWORD_VAR);
    let env = env(&config);
    env.write("data/entra-users.csv", &read("data/entra-users.csv"));
    env.ok(&["run", "check"]);
    let preview = env.preview();
    let mut adds: Vec<String> = preview
        .iter()
        .map(|c| {
            assert_eq!(c["operation"], "add", "only adds: {c}");
            let text = c.to_string();
            ["ktanaka", "psharma"]
                .into_iter()
                .find(|n| text.contains(&format!("{n}@contoso.example")))
                .unwrap_or_else(|| panic!("an unexpected add: {text}"))
                .to_owned()
        })
        .collect();
    adds.sort();
    assert_eq!(adds, ["ktanaka", "psharma"], "{preview:?}");
    assert_eq!(
        read("data/entra-users.csv"),
        std::fs::read_to_string(env.path("data/entra-users.csv")).expect("the export"),
        "staging: the tenant's file is untouched"
    );
}

#[test]
fn ad_group_membership_changes_add_and_remove_just_those_members() {
    let Some(samba) = directory::samba() else {
        return;
    };
    let ou = samba.ou("t-groups", &["Users", "Groups"]);
    let config = format!(
        r#"
[store]
path = "state/mvsync.db"

[connectors.src]
type = "csv"
path = "data/directory.csv"
anchor = "key"
object_type_column = "kind"
object_types = ["worker", "team"]
multi_valued = {{ members = ";" }}
references = {{ members = "key" }}
columns = ["key", "kind", "name", "members"]

[connectors.ad]
type = "ldap"
flavor = "active-directory"
url = "ldaps://127.0.0.1:636"
bind_dn = "Administrator@TEST.LOCAL"
password = {{ env = "{PASSWORD_VAR}" }}
ca_file = "{ca}"
base_dns = ["{ou}"]
initial_password = {{ length = 20 }}   # sent with the users only
[connectors.ad.object_types.user]
object_class = "user"
attributes = ["sAMAccountName", "displayName"]
[connectors.ad.object_types.group]
object_class = "group"
object_classes = ["top", "group"]
attributes = ["sAMAccountName", "displayName", "member"]
references = ["member"]
multi_valued = ["member"]

[[rules]]
name = "src-workers"
direction = "inbound"
connector = "src"
mv_object_type = "person"
cs_object_type = "worker"
join = [ {{ cs = "key", mv = "employeeId" }} ]
project = true
[rules.flows]
employeeId = "key"
displayName = "name"

[[rules]]
name = "src-teams"
direction = "inbound"
connector = "src"
mv_object_type = "group"
cs_object_type = "team"
join = [ {{ cs = "key", mv = "groupId" }} ]
project = true
[rules.flows]
groupId = "key"
displayName = "name"
members = "members"

[[rules]]
name = "ad-users"
direction = "outbound"
connector = "ad"
mv_object_type = "person"
cs_object_type = "user"
provision = true
deprovision = "delete"
[rules.flows]
dn = '"CN=" + EscapeDN(displayName) + ",OU=Users,{ou}"'
sAMAccountName = {{ expr = '"grp-" + Lower(employeeId)', initial_only = true }}
displayName = "displayName"

[[rules]]
name = "ad-groups"
direction = "outbound"
connector = "ad"
mv_object_type = "group"
cs_object_type = "group"
provision = true
deprovision = "delete"
[rules.flows]
dn = '"CN=" + EscapeDN(displayName) + ",OU=Groups,{ou}"'
sAMAccountName = {{ expr = '"grp-" + Lower(groupId)', initial_only = true }}
displayName = "displayName"
member = "members"

[run_profiles.cycle]
steps = [
  {{ connector = "src", step = "full-import" }},
  {{ connector = "src", step = "full-sync" }},
  {{ connector = "ad", step = "export" }},
  {{ connector = "ad", step = "delta-import", fallback = "full-import" }},
  {{ connector = "ad", step = "delta-sync" }},
]
"#,
        ca = ca_file(),
    );
    let directory = |members: &str| {
        format!(
            "key,kind,name,members\nT1,team,Engineering,{members}\nE1,worker,Ada Lovelace,\nE2,worker,Grace Hopper,\nE3,worker,\"Smith; Jo\",\nE4,worker,Alan Turing,\n"
        )
    };
    let env = env(&config);
    env.write("data/directory.csv", &directory("E1;E2;E3"));
    env.ok(&["run", "cycle"]);
    let group = format!("CN=Engineering,OU=Groups,{ou}");
    let members = || {
        let mut m: Vec<String> = samba
            .tools()
            .values(&group, "member")
            .expect("the group")
            .into_iter()
            .map(|dn| dn.split(",OU=").next().unwrap_or_default().to_owned())
            .collect();
        m.sort();
        m
    };
    assert_eq!(
        members(),
        ["CN=Ada Lovelace", "CN=Grace Hopper", "CN=Smith\\3B Jo"],
        "the group is added after its members, with them"
    );
    assert!(env.preview().is_empty(), "{:?}", env.preview());

    // Grace leaves the team, Alan joins: one modify that deletes one value
    // and adds one.
    env.write("data/directory.csv", &directory("E1;E3;E4"));
    env.ok(&["import", "src"]);
    env.ok(&["sync", "src"]);
    let preview = env.preview();
    assert_eq!(preview.len(), 1, "{preview:?}");
    assert_eq!(
        operations(&preview)[0].1,
        "update",
        "only the group changes: {preview:?}"
    );
    let ops: Vec<String> = preview[0]["attributes"]
        .as_array()
        .expect("attributes")
        .iter()
        .map(|a| {
            format!(
                "{} {}",
                a["name"].as_str().unwrap_or("?"),
                a["op"].as_str().unwrap_or("?")
            )
        })
        .collect();
    assert!(ops.iter().all(|o| o.starts_with("member ")), "{ops:?}");
    env.ok(&["run", "cycle"]);
    assert_eq!(
        members(),
        ["CN=Ada Lovelace", "CN=Alan Turing", "CN=Smith\\3B Jo"]
    );
    assert!(env.preview().is_empty(), "{:?}", env.preview());
}
