# The two commands: `make dev` (run the service locally) and `make test` (every test and check).
.PHONY: dev test bench soak fuzz lint lint-template topology sam-env package redrive audit fmt install stop clean

dev: ## install what is missing, start the local stack, seed demo data, serve the API on :3000
	infra/dev.sh

test: ## lint and lint-template, then all unit and integration tests against a local stack of their own
	infra/test.sh

bench: ## measure (contention vs the seed strategy, per-op cost, expiry, cold start): BENCHMARKS.md
	infra/bench.sh

soak: ## the reliability tests, longer than in make test; figures into RELIABILITY.md
	infra/soak.sh

fuzz: ## the schema fuzzer (Schemathesis, every check) against the local server: make fuzz [EXAMPLES=200]
	infra/fuzz.sh $(EXAMPLES)

lint: ## formatting, clippy (warnings are errors), no source file over 400 lines of code, the docs' links
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings
	python3 infra/loc.py --max 400 shared/src dev-server/src bench/src
	python3 infra/check_docs.py

lint-template: ## cfn-lint, the SAM transform, functions/ <-> template.yaml <-> openapi.json, what the local runtime runs
	infra/install.sh template
	.local/template/bin/cfn-lint template.yaml
	.local/template/bin/python infra/lint_template.py

topology: ## what template.yaml deploys, resolved for the local runtime: .local/topology.json
	infra/install.sh template
	.local/template/bin/python infra/topology.py

sam-env: ## the --env-vars file for `sam local invoke / start-api` against `make dev`'s stack: .local/sam-env.json
	infra/install.sh template
	.local/template/bin/python infra/topology.py
	.local/template/bin/python infra/sam_env.py

package: ## cargo lambda build --release --arm64 of every function; sizes in target/lambda/sizes.md
	infra/package.sh

redrive: ## move a DLQ's messages back (local stack): make redrive [DLQ=name] [ARGS=--dry-run]
	infra/redrive.sh $(if $(DLQ),--dlq $(DLQ)) $(ARGS)

audit: ## the consistency audit against the `make dev` stack: prints its report (make audit [ARGS=--json])
	infra/audit.sh $(ARGS)

fmt:
	cargo fmt --all

install: ## install DynamoDB Local, LocalStack and the deploy tools into .local/ (idempotent)
	infra/install.sh all

stop: ## stop a `make dev` stack left running (e.g. after kill -9)
	infra/stack.sh stop .local/dev

clean:
	rm -rf target .local
