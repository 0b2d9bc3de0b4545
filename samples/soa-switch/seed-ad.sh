#!/usr/bin/env bash
# Seeds OU=soa in the hr-to-ad sample's Samba DC with the four users of
# data/ad-users.ldif, each with the mS-DS-ConsistencyGuid its Entra twin
# holds as onPremisesImmutableId (data/entra-users.json). Start the DC
# first: ../hr-to-ad/start-samba.sh (with MVSYNC_AD_PASSWORD set).
set -euo pipefail
cd "$(dirname "$0")"
: "${MVSYNC_AD_PASSWORD:?set MVSYNC_AD_PASSWORD to the DC's Administrator password}"
export LDAPTLS_CACERT=$PWD/../hr-to-ad/state/samba/tls/ca.pem
ldapadd -x -H ldaps://127.0.0.1:636 -D Administrator@CORP.EXAMPLE -w "$MVSYNC_AD_PASSWORD" \
    -f data/ad-users.ldif >/dev/null
echo "seeded OU=soa,DC=corp,DC=example with $(grep -c '^sAMAccountName' data/ad-users.ldif) users"
