# CityBrain. `make run` starts the whole system with the demo city; `make test` runs the test suite.
GO       ?= go
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
BIN      := bin/citybrain
DATA_DIR ?= data
HTTP     ?= 127.0.0.1:8080
FUZZTIME ?= 5s
export CITYBRAIN_DATA ?= $(abspath ../shared/data)
export SUMO_HOME ?= /usr/share/sumo

# Packages whose code runs goroutines: tested with -race.
RACE_PKGS := ./engine/... ./api/... ./eventlog/... ./replay/... ./system/... ./cmd/... ./ingest ./ingest/feed/... ./ingest/httpin ./ingest/natsin

.PHONY: all web build run test test-race test-rest test-web fuzz fuzz-long check bench bench-micro eval clean

all: build

# The command-center app (web/src → web/dist, embedded in the binary).
web:
	bash scripts/web-build.sh

build: web
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/citybrain

run: build
	./$(BIN) run --http $(HTTP) --data $(DATA_DIR)

# The whole suite: vet, race-checked packages, the rest, a short fuzz of every decoder, and the browser
# tests of the command center (Debian chromium driven by playwright-core).
test: web test-race test-rest fuzz test-web

test-race:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m $(RACE_PKGS)

test-rest:
	$(GO) test -count=1 -timeout 20m $$($(GO) list ./... | grep -v -E 'citybrain/(engine|api|eventlog|replay|system|cmd)(/|$$)|citybrain/ingest$$|citybrain/ingest/(feed|httpin|natsin)')

test-web:
	bash scripts/web-test.sh

# Every Fuzz target for FUZZTIME (make fuzz FUZZTIME=2m for a longer run; FUZZ_ONLY=regexp picks targets).
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) bash scripts/fuzz.sh

# The decoders of every input path (HTTP, Arrow, NATS subjects, the log, every feed) for 10 minutes each,
# one worker each, niced (docs/security.md): about two hours.
FUZZ_DECODERS := ^Fuzz(DecodeBatch|ReadIPC|IngestArrow|HTTPEvents|NATSSubjects|LogMessage|FCD|E1|GTFSRT|LoopCSV|DeepStream|Incidents)$$
fuzz-long:
	FUZZTIME=10m FUZZPARALLEL=1 FUZZ_ONLY='$(FUZZ_DECODERS)' GO=$(GO) nice bash scripts/fuzz.sh

check:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# The load and latency harness (a fresh process, embedded NATS, temp data dir): JSON report and a table.
bench: build
	./$(BIN) bench --out bin/bench-report.json

# Micro-benchmarks of the hot paths (decode, cell assignment, window append, aggregation, delta encoding).
bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./engine/ ./ingest/ ./api/ ./geo/

# Incident detection against labelled ground truth: the demo city and SUMO Bologna with injected closures.
eval: build
	./$(BIN) eval --out bin/eval-report.json --table bin/eval-table.md

clean:
	rm -rf bin

# Closed-loop signal control in SUMO (docs/signals.md, docs/emergency.md): fixed time, SUMO actuated, Webster,
# max-pressure and emergency preemption on Bologna and Hangzhou. SIGNALS_END simulated seconds per run.
SIGNALS_END ?= 3600
.PHONY: signals-sumo signals-sumo-short
signals-sumo: build
	./$(BIN) signals -net bologna -end $(SIGNALS_END) -json bin/signals-bologna.json
	./$(BIN) signals -net hangzhou -end 2400 -json bin/signals-hangzhou.json

# The short form CI runs (skips without sumo).
signals-sumo-short:
	$(GO) test -count=1 -run ClosedLoopShort -v ./bench/signals/
