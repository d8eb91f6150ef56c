# examhall — the two commands a new user needs are `make run` and `make test`.
GO   ?= go
ARGS ?=
# staticcheck's version (from the Go module proxy); make test runs it after vet.
STATICCHECK ?= v0.8.2
# The S3 server the object-storage tests start (Versity's gateway, Apache-2.0).
VERSITYGW ?= v1.8.0

.PHONY: run build test test-short vet clean models

## run: build and start the demo (SQLite, in-process bus) at http://127.0.0.1:8080
run: build models
	./bin/examhall demo $(ARGS)

## models: the exam page's face analysis files (@vladmandic/human and the
## tfjs wasm backend) from the npm registry into frontend/node_modules.
## Without npm examhall still runs, with the browser's face analysis off.
FACE_MODELS = frontend/node_modules/.package-lock.json
models: $(FACE_MODELS)
$(FACE_MODELS): frontend/package.json frontend/package-lock.json
	@if command -v npm >/dev/null; then cd frontend && npm ci --ignore-scripts --no-audit --no-fund || \
		echo "note: npm ci failed: the exam page will not analyse faces until it works"; \
	else echo "note: npm is missing (apt-get install nodejs npm): the exam page will not analyse faces"; fi

## build: compile the single binary to bin/examhall
build:
	$(GO) build -o bin/examhall ./cmd/examhall

## test: every test, with throwaway PostgreSQL and Redis when they are installed:
## first everything under the race detector, then the end-to-end tests
## (Chromium, Firefox ESR, the real binary, SIGKILL, three-node clusters) at
## full speed, then every fuzz target for 5 s (.ci/fuzz; FUZZTIME sets it).
## It installs versitygw (an S3 server) with go install when it is missing.
test: models
	@command -v redis-server >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		echo "note: PostgreSQL and Redis variants need 'apt-get install postgresql redis-server' (.ci/run does it); running the rest."
	@/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || \
		echo "note: the mail tests need a real SMTP server: 'apt-get install python3-aiosmtpd' (.ci/run does it); they skip without it."
	@command -v versitygw >/dev/null || [ -x "$$($(GO) env GOPATH)/bin/versitygw" ] || \
		$(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW) || \
		echo "note: versitygw did not install: the object-storage tests will skip"
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK) ./...
	@if command -v npm >/dev/null; then npm ci --prefix frontend/browsertest/firefox --no-audit --no-fund --loglevel=error; \
		else echo "note: the Firefox test needs Node.js and npm ('apt-get install nodejs npm firefox-esr'; .ci/run does it)"; fi
	.ci/with-services sh -c '$(GO) test -race -short -count=1 ./... && $(GO) test -count=1 -run "Chromium|Firefox|Binary|Kill|Cluster" ./...'
	.ci/fuzz

## test-short: unit tests only, no databases started, seconds
test-short:
	$(GO) test -short -count=1 ./...

clean:
	rm -rf bin
