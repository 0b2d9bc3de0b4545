#!/usr/bin/env bash
# Starts a throw-away Samba AD domain controller for this sample on
# 127.0.0.1 (LDAP 389 with StartTLS, LDAPS 636), in state/samba:
#   - a test CA and a server certificate for 127.0.0.1 (state/samba/tls),
#     so the connector verifies the DC's certificate as it would in
#     production;
#   - the domain CORP.EXAMPLE (DC=corp,DC=example), Administrator's
#     password taken from MVSYNC_AD_PASSWORD;
#   - OU=mvsync with Staff, Sales and Leavers under it.
# Needs root and Debian's samba, samba-ad-dc, samba-ad-provision,
# ldap-utils and openssl. Stop the DC with: kill "$(cat state/samba/samba.pid)"
set -euo pipefail
cd "$(dirname "$0")"
: "${MVSYNC_AD_PASSWORD:?set MVSYNC_AD_PASSWORD to the password Administrator gets (it must meet the domain password complexity rules)}"
STATE=$PWD/state/samba
if [ -f "$STATE/samba.pid" ] && kill -0 "$(cat "$STATE/samba.pid")" 2>/dev/null; then
    echo "the sample's DC is already running (pid $(cat "$STATE/samba.pid"))"; exit 0
fi
rm -rf "$STATE"; mkdir -p "$STATE/tls" "$STATE/run"

# The CA and the DC's certificate.
(
    cd "$STATE/tls"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
        -subj "/CN=mvsync sample CA" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n' > server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
        -days 3650 -extfile server.ext 2>/dev/null
    chmod 600 server.key ca.key
    rm -f server.csr server.ext ca.srl
)

echo "provisioning CORP.EXAMPLE (a few seconds)..."
samba-tool domain provision --targetdir="$STATE/dc" --realm=CORP.EXAMPLE --domain=CORP \
    --server-role=dc --dns-backend=NONE --host-name=dc1 --adminpass="$MVSYNC_AD_PASSWORD" \
    --option="interfaces=lo" --option="bind interfaces only=yes" \
    --option="tls enabled=yes" --option="tls keyfile=$STATE/tls/server.key" \
    --option="tls certfile=$STATE/tls/server.pem" --option="tls cafile=$STATE/tls/ca.pem" \
    --option="pid directory=$STATE/run" --option="log file=$STATE/log.%m" \
    > "$STATE/provision.log" 2>&1 || { tail -20 "$STATE/provision.log" >&2; exit 1; }

# One process, only the LDAP service; stdin from /dev/null (with -i samba
# stops at the end of its input).
setsid samba -s "$STATE/dc/etc/smb.conf" -i -M single --option="server services=ldap" \
    < /dev/null > "$STATE/samba.log" 2>&1 &
echo $! > "$STATE/samba.pid"

export LDAPTLS_CACERT=$STATE/tls/ca.pem
ldap() { "$@" -x -H ldaps://127.0.0.1:636 -D Administrator@CORP.EXAMPLE -w "$MVSYNC_AD_PASSWORD"; }
for _ in $(seq 1 300); do
    if ldap ldapsearch -s base -b DC=corp,DC=example dn >/dev/null 2>&1; then break; fi
    sleep 0.1
done
ldap ldapadd >/dev/null <<'LDIF'
dn: OU=mvsync,DC=corp,DC=example
objectClass: organizationalUnit

dn: OU=Staff,OU=mvsync,DC=corp,DC=example
objectClass: organizationalUnit

dn: OU=Sales,OU=mvsync,DC=corp,DC=example
objectClass: organizationalUnit

dn: OU=Leavers,OU=mvsync,DC=corp,DC=example
objectClass: organizationalUnit
LDIF
echo "Samba AD DC running (pid $(cat "$STATE/samba.pid")) on ldaps://127.0.0.1:636"
