#!/usr/bin/env bash
# The LDAP connector's export rate into Active Directory next to `ldapadd`
# of the same entries, on the Samba AD DC of samples/hr-to-ad (started by
# this script when it is not running; stop it with
# `kill "$(cat samples/hr-to-ad/state/samba/samba.pid)"`).
#
#   cargo build --release -p mvsync
#   bench/ldap-export.sh [USERS]          # default 10000
#
# Both write the same users (the same attributes, no password: Samba
# spends ~25 ms hashing each one) over LDAPS into OUs of their own. Needs
# root and Debian's samba, samba-ad-dc, samba-ad-provision, ldap-utils.
set -euo pipefail
cd "$(dirname "$0")/.."
users=${1:-10000}
export MVSYNC_AD_PASSWORD=${MVSYNC_AD_PASSWORD:-Sample-Pass-1!}
./samples/hr-to-ad/start-samba.sh >/dev/null
mvsync=$PWD/target/release/mvsync
work=$(mktemp -d /tmp/mvsync-ldap-bench-XXXX)
trap 'rm -rf "$work"' EXIT
export LDAPTLS_CACERT=$PWD/samples/hr-to-ad/state/samba/tls/ca.pem
ldap() { "$@" -x -H ldaps://127.0.0.1:636 -D Administrator@CORP.EXAMPLE -w "$MVSYNC_AD_PASSWORD"; }
run=$(date +%s)
tag=$((run % 100000))   # account names are unique in the domain: one set per run
base="OU=bench-$run,DC=corp,DC=example"
printf 'dn: %s\nobjectClass: organizationalUnit\n\ndn: OU=mvsync,%s\nobjectClass: organizationalUnit\n\ndn: OU=ldapadd,%s\nobjectClass: organizationalUnit\n' \
    "$base" "$base" "$base" | ldap ldapadd >/dev/null

python3 - "$users" "$work" "$base" "$tag" <<'PY'
import sys
n, work, base, tag = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
with open(f"{work}/hr.csv", "w") as hr, open(f"{work}/users.ldif", "w") as ldif:
    hr.write("employeeId,firstName,lastName,department\n")
    for i in range(n):
        hr.write(f"B{i:06},First{i},Last{i},Department {i % 40}\n")
        ldif.write(f"dn: CN=First{i} Last{i},OU=ldapadd,{base}\nobjectClass: top\nobjectClass: person\n"
                   f"objectClass: organizationalPerson\nobjectClass: user\nsAMAccountName: l{i:06}{tag}\n"
                   f"userPrincipalName: l{i:06}{tag}@corp.example\ngivenName: First{i}\nsn: Last{i}\n"
                   f"displayName: First{i} Last{i}\ndepartment: Department {i % 40}\nemployeeID: B{i:06}\n"
                   f"userAccountControl: 514\n\n")
PY
cat > "$work/mvsync.toml" <<TOML
[store]
path = "state/mvsync.db"
[connectors.hr]
type = "csv"
path = "hr.csv"
object_type = "worker"
anchor = "employeeId"
[connectors.ad]
type = "ldap"
flavor = "active-directory"
url = "ldaps://127.0.0.1:636"
bind_dn = "Administrator@CORP.EXAMPLE"
password = { env = "MVSYNC_AD_PASSWORD" }
ca_file = "$LDAPTLS_CACERT"
base_dns = ["OU=mvsync,$base"]
[connectors.ad.object_types.user]
object_class = "user"
object_classes = ["top", "person", "organizationalPerson", "user"]
attributes = ["sAMAccountName", "userPrincipalName", "givenName", "sn", "displayName", "department", "employeeID", "userAccountControl"]
[[rules]]
name = "hr-in"
direction = "inbound"
connector = "hr"
mv_object_type = "person"
join = [ { cs = "employeeId", mv = "employeeId" } ]
project = true
[rules.flows]
employeeId = "employeeId"
firstName = "firstName"
lastName = "lastName"
department = "department"
[[rules]]
name = "ad-out"
direction = "outbound"
connector = "ad"
mv_object_type = "person"
cs_object_type = "user"
provision = true
[rules.flows]
dn = '"CN=" + EscapeDN(firstName + " " + lastName) + ",OU=mvsync,$base"'
sAMAccountName = 'Lower(Replace(employeeId, "B", "m")) + "$tag"'
userPrincipalName = 'Lower(Replace(employeeId, "B", "m")) + "$tag@corp.example"'
givenName = "firstName"
sn = "lastName"
displayName = 'firstName + " " + lastName'
department = "department"
employeeID = "employeeId"
userAccountControl = "514"
TOML
cd "$work"
"$mvsync" import hr >/dev/null
"$mvsync" sync hr >/dev/null
measure() { /usr/bin/time -f "%e s wall, %M KB peak RSS" "$@"; }
# Each on a freshly provisioned DC: Samba slows down as its database grows.
fresh() {
    kill "$(cat "$OLDPWD/samples/hr-to-ad/state/samba/samba.pid")" 2>/dev/null || true
    sleep 2
    "$OLDPWD/samples/hr-to-ad/start-samba.sh" >/dev/null
    printf 'dn: %s\nobjectClass: organizationalUnit\n\ndn: OU=mvsync,%s\nobjectClass: organizationalUnit\n\ndn: OU=ldapadd,%s\nobjectClass: organizationalUnit\n' \
        "$base" "$base" "$base" | ldap ldapadd >/dev/null
}
fresh
echo "ldapadd of $users entries:"
measure ldapadd -x -H ldaps://127.0.0.1:636 -D Administrator@CORP.EXAMPLE -w "$MVSYNC_AD_PASSWORD" -f users.ldif >/dev/null
fresh
echo "mvsync export ad of the same $users users:"
measure "$mvsync" export ad | tail -1
echo "mvsync import ad --full (read them back):"
measure "$mvsync" import ad --full | tail -1
