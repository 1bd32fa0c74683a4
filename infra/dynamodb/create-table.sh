#!/usr/bin/env bash
# Creates the Keyway DynamoDB table (users, teams, virtual keys) with the
# definition template.yaml declares and shared/dynamostore.TableInput builds:
#
#   key schema   pk (S, HASH), sk (S, RANGE)
#   gsi1         gsi1pk (S, HASH), gsi1sk (S, RANGE), projection ALL
#   gsi2         gsi2pk (S, HASH), gsi2sk (S, RANGE), projection ALL
#   billing      PAY_PER_REQUEST
#   TTL          attribute ttl (epoch seconds)
#
# Usage: infra/dynamodb/create-table.sh TABLE
#
# Honours AWS_ENDPOINT_URL_DYNAMODB, then AWS_ENDPOINT_URL, to reach a local
# emulator (moto server), plus the usual AWS_REGION / credentials. An existing
# table is left as it is (TTL is still turned on). Keep this file, the
# template and TableInput identical; dynamostore's tests compare them.
set -euo pipefail

table=${1:-${TABLE:-}}
if [[ -z $table ]]; then
  echo "usage: $0 TABLE   (or TABLE=name $0)" >&2
  exit 2
fi

args=()
endpoint=${AWS_ENDPOINT_URL_DYNAMODB:-${AWS_ENDPOINT_URL:-}}
if [[ -n $endpoint ]]; then
  args+=(--endpoint-url "$endpoint")
fi
ddb() { aws dynamodb ${args[@]+"${args[@]}"} "$@"; }

if ddb describe-table --table-name "$table" >/dev/null 2>&1; then
  echo "table $table exists"
else
  ddb create-table \
    --table-name "$table" \
    --billing-mode PAY_PER_REQUEST \
    --attribute-definitions \
      AttributeName=pk,AttributeType=S \
      AttributeName=sk,AttributeType=S \
      AttributeName=gsi1pk,AttributeType=S \
      AttributeName=gsi1sk,AttributeType=S \
      AttributeName=gsi2pk,AttributeType=S \
      AttributeName=gsi2sk,AttributeType=S \
    --key-schema \
      AttributeName=pk,KeyType=HASH \
      AttributeName=sk,KeyType=RANGE \
    --global-secondary-indexes '[
      {"IndexName": "gsi1",
       "KeySchema": [{"AttributeName": "gsi1pk", "KeyType": "HASH"}, {"AttributeName": "gsi1sk", "KeyType": "RANGE"}],
       "Projection": {"ProjectionType": "ALL"}},
      {"IndexName": "gsi2",
       "KeySchema": [{"AttributeName": "gsi2pk", "KeyType": "HASH"}, {"AttributeName": "gsi2sk", "KeyType": "RANGE"}],
       "Projection": {"ProjectionType": "ALL"}}
    ]' >/dev/null
  echo "table $table created"
fi

ddb wait table-exists --table-name "$table"

status=$(ddb describe-time-to-live --table-name "$table" \
  --query 'TimeToLiveDescription.TimeToLiveStatus' --output text 2>/dev/null || true)
if [[ $status == ENABLED || $status == ENABLING ]]; then
  echo "ttl on $table already enabled"
else
  ddb update-time-to-live --table-name "$table" \
    --time-to-live-specification Enabled=true,AttributeName=ttl >/dev/null
  echo "ttl on $table enabled (attribute ttl)"
fi
