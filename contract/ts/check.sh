#!/usr/bin/env bash
# The frontend's generated client compiles: openapi-typescript (default options) on the merged
# OpenAPI given as $1, then `tsc --strict` on src/use.ts. Pinned by package-lock.json.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --silent --no-audit --no-fund
npx --no-install openapi-typescript "$1" --output src/api.d.ts
npx --no-install tsc --strict --noEmit --skipLibCheck false src/use.ts
echo "TypeScript client: generated and compiled with --strict"
