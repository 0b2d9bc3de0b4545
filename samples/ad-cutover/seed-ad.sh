#!/usr/bin/env bash
# Seeds OU=cutover in the hr-to-ad sample's Samba DC with the users of
# data/ad-users.ldif (four carry the mS-DS-ConsistencyGuid their Entra
# twin holds as onPremisesImmutableId; Kenji's Entra twin carries another
# anchor; Priya was never synced). Start the DC first:
# ../hr-to-ad/start-samba.sh (with MVSYNC_AD_PASSWORD set).
set -euo pipefail
cd "$(dirname "$0")"
: "${MVSYNC_AD_PASSWORD:?set MVSYNC_AD_PASSWORD to the DC's Administrator password}"
export LDAPTLS_CACERT=$PWD/../hr-to-ad/state/samba/tls/ca.pem
ldapadd -x -H ldaps://127.0.0.1:636 -D Administrator@CORP.EXAMPLE -w "$MVSYNC_AD_PASSWORD" \
    -f data/ad-users.ldif >/dev/null
echo "seeded OU=cutover,DC=corp,DC=example with $(grep -c '^sAMAccountName' data/ad-users.ldif) users"
