package system

// Tests of issue 15's table: each reproduces one row (what was done to `citybrain run`, as an attacker or a
// careless client would) against the real system (embedded NATS with JetStream, the HTTP server) and checks
// what happens now. docs/security.md lists them by row.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"citybrain/api"
	"citybrain/engine"
	"citybrain/eventlog"
	"citybrain/geo"
	"citybrain/ingest"
)

// arrowProbes is an Arrow IPC stream of n probes from ts0 (ms), one every 100 ms.
func arrowProbes(t *testing.T, n int, ts0 int64) []byte {
	t.Helper()
	bb := engine.NewBatchBuilder(memory.DefaultAllocator)
	defer bb.Release()
	for i := 0; i < n; i++ {
		e := engine.NewEvent(engine.KindProbe)
		e.TS, e.ID, e.SpeedKmh = ts0+int64(i)*100, fmt.Sprintf("veh-%d", i), 30
		e.Lat, e.Lng = 30.25+float64(i%20)*0.001, 120.15
		bb.Append(&e, 0)
	}
	rec := bb.NewRecord()
	defer rec.Release()
	data, err := eventlog.EncodeRecord(rec, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// bodyBomb returns stream with its record batch's header claiming a body of 2^42 bytes.
func bodyBomb(t *testing.T, stream []byte) []byte {
	t.Helper()
	msgs, err := ingest.IPCMessages(stream)
	if err != nil || len(msgs) < 2 || msgs[1].BodyLenAt < 0 {
		t.Fatalf("stream layout %+v: %v", msgs, err)
	}
	bomb := bytes.Clone(stream)
	binary.LittleEndian.PutUint64(bomb[msgs[1].BodyLenAt:], 1<<42)
	return bomb
}

func writeAuthFile(t *testing.T, dir string, tokens ...string) string {
	t.Helper()
	var list []string
	for i := 0; i+2 < len(tokens)+1; i += 3 {
		list = append(list, fmt.Sprintf(`{"name":%q,"role":%q,"token":%q}`, tokens[i], tokens[i+1], tokens[i+2]))
	}
	p := filepath.Join(dir, "auth.json")
	if err := os.WriteFile(p, []byte(`{"tokens":[`+strings.Join(list, ",")+`]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func statusOf(t *testing.T, s *System, hdr map[string]string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+s.Addr()+"/api/v1/status", nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("status: %v", err)
	}
	return st
}

func logMsgs(t *testing.T, s *System) uint64 {
	t.Helper()
	st, err := s.Log.State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Msgs
}

// Row 1: an Arrow IPC stream of a few KB whose record-batch header claims a 2^42-byte body, over HTTP with
// a feed token and over NATS citybrain.in.arrow: the process died of out of memory. Now both are refused
// naming the lie, the NATS one is dead-lettered, and the server goes on ingesting.
func TestArrowBodyLengthBombIsRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.AuthFile = writeAuthFile(t, dir, "cam", "feed", "feedtok", "ops", "admin", "admintok")
	s := start(t, cfg)
	good := arrowProbes(t, 50, 1795737600000)
	bomb := bodyBomb(t, good)
	feed := map[string]string{"Authorization": "Bearer feedtok"}
	code, ans := post(t, s, ingest.ContentTypeArrow, bomb, feed)
	if code != 400 || !strings.Contains(fmt.Sprint(ans["error"]), "claims a body of 4398046511104 bytes") {
		t.Errorf("HTTP bomb: %d %v, want 400 naming the claimed body", code, ans)
	}
	nc, err := nats.Connect(s.NATSURL(), nats.Token("feedtok"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	reply, err := nc.Request("citybrain.in.arrow", bomb, 10*time.Second)
	if err != nil || !strings.Contains(string(reply.Data), "claims a body") {
		t.Errorf("NATS bomb: %v %s, want an answer naming the claimed body", err, replyData(reply))
	}
	if code, ans := post(t, s, ingest.ContentTypeArrow, good, feed); code != 200 || ans["accepted"] != 50.0 {
		t.Errorf("a good stream after the bombs: %d %v", code, ans)
	}
	if n := logMsgs(t, s); n != 1 {
		t.Errorf("the log holds %d messages, want the good stream's 1", n)
	}
	dead, _, err := s.Log.Dead(context.Background(), 10)
	if err != nil || len(dead) != 1 || dead[0].Via != "nats:citybrain.in.arrow" {
		t.Errorf("dead letters %+v (%v), want the NATS bomb", dead, err)
	}
}

func replyData(m *nats.Msg) string {
	if m == nil {
		return ""
	}
	return string(m.Data)
}

// Row 2: a client of the embedded NATS server without credentials, while HTTP ran with --auth, forged an
// operator action on citybrain.log.events, purged the event stream, deleted the dead-letter stream and put
// the stream of row 1 into the log; --nats-listen 0.0.0.0 was accepted without auth. Now: without a token
// no connection; a feed token publishes to citybrain.in.> only; nothing outside the process reaches the log,
// JetStream's API or the process's inboxes; an admin token (the tools) may read the log.
func TestNATSOutsidersOnlyPublishIngest(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.AuthFile = writeAuthFile(t, dir, "cam", "feed", "feedtok", "wall", "viewer", "viewtok", "ops", "admin", "admintok")
	s := start(t, cfg)
	if nc, err := nats.Connect(s.NATSURL()); err == nil {
		nc.Close()
		t.Fatal("a client without credentials connected")
	}
	if nc, err := nats.Connect(s.NATSURL(), nats.Token("wrong")); err == nil {
		nc.Close()
		t.Fatal("a client with an unknown token connected")
	}
	var mu sync.Mutex
	var violations []string
	onErr := nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		mu.Lock()
		violations = append(violations, err.Error())
		mu.Unlock()
	})
	feed, err := nats.Connect(s.NATSURL(), nats.Token("feedtok"), onErr)
	if err != nil {
		t.Fatal(err)
	}
	defer feed.Close()
	msg := `{"kind":"probe","ts":1795737600000,"id":"n1","lat":30.27,"lng":120.15,"speed_kmh":12.5}`
	if reply, err := feed.Request("citybrain.in.probe", []byte(msg), 10*time.Second); err != nil || !strings.Contains(string(reply.Data), `"accepted":1`) {
		t.Fatalf("feed ingest: %v %s", err, replyData(reply))
	}
	before := logMsgs(t, s)
	forged := nats.NewMsg(eventlog.EventsSubject)
	forged.Header.Set(eventlog.HeaderType, eventlog.TypeAction)
	forged.Data = []byte(`{"id":"x","incident_id":"i1","status":"dismissed","by":"commander","role":"commander"}`)
	feed.PublishMsg(forged)
	feed.Publish(eventlog.EventsSubject, bodyBomb(t, arrowProbes(t, 5, 1795737600000)))
	for _, subj := range []string{"$JS.API.STREAM.PURGE." + eventlog.EventsStream, "$JS.API.STREAM.DELETE." + eventlog.DeadStream} {
		if reply, err := feed.Request(subj, nil, 2*time.Second); err == nil {
			t.Errorf("%s answered: %s", subj, reply.Data)
		}
	}
	for _, subj := range []string{"citybrain.log.>", InternalInbox + ".>", "$JS.>"} {
		sub, err := feed.SubscribeSync(subj)
		if err == nil {
			if _, err := sub.NextMsg(500 * time.Millisecond); err == nil {
				t.Errorf("a feed received a message on %s", subj)
			}
		}
	}
	feed.Flush()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(violations)
		mu.Unlock()
		if n >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	if len(violations) < 3 || !strings.Contains(strings.Join(violations, "\n"), "Permissions Violation") {
		t.Errorf("permission violations reported to the feed: %q, want the publishes and subscriptions refused", violations)
	}
	mu.Unlock()
	if after := logMsgs(t, s); after != before {
		t.Errorf("the log went from %d to %d messages after the forged publishes", before, after)
	}
	if _, err := s.Log.DeadCount(context.Background()); err != nil {
		t.Errorf("the dead-letter stream is gone: %v", err)
	}
	// A reading role subscribes to what CityBrain publishes and publishes nothing.
	viewer, err := nats.Connect(s.NATSURL(), nats.Token("viewtok"))
	if err != nil {
		t.Fatal(err)
	}
	defer viewer.Close()
	if _, err := viewer.Request("citybrain.in.probe", []byte(msg), time.Second); err == nil {
		t.Error("a viewer token published an event")
	}
	// The tools' admin token reads the log.
	admin, err := nats.Connect(s.NATSURL(), nats.Token("admintok"), nats.CustomInboxPrefix(InternalInbox))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	js, _ := jetstream.New(admin)
	if _, err := js.Stream(context.Background(), eventlog.EventsStream); err != nil {
		t.Errorf("admin token cannot read the log: %v", err)
	}
}

// Row 2, continued: an embedded NATS server listening beyond loopback needs --auth; on loopback without an
// auth config a client may publish events (like HTTP there) but still not touch the log.
func TestNATSWithoutAuthStaysOnLoopbackAndOffTheLog(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.NATSListen = "0.0.0.0:0"
	if _, err := Start(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "auth") {
		t.Fatalf("--nats-listen 0.0.0.0 without auth: %v, want a refusal naming auth", err)
	}
	s := start(t, testConfig(t, t.TempDir()))
	nc, err := nats.Connect(s.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Request("$JS.API.STREAM.PURGE."+eventlog.EventsStream, nil, 2*time.Second); err == nil {
		t.Error("an anonymous loopback client purged the log")
	}
	nc.Publish(eventlog.EventsSubject, []byte("forged"))
	nc.Flush()
	if reply, err := nc.Request("citybrain.in.probe", []byte(`{"kind":"probe","ts":1795737600000,"id":"a","lat":30.27,"lng":120.15,"speed_kmh":3}`), 10*time.Second); err != nil || !strings.Contains(string(reply.Data), `"accepted":1`) {
		t.Errorf("anonymous loopback ingest: %v %s", err, replyData(reply))
	}
	if n := logMsgs(t, s); n != 1 {
		t.Errorf("the log holds %d messages, want the one ingested", n)
	}
}

// Row 2, the restart: messages in the log that no reader can read (the row-1 stream, garbage, a broken
// action) — they can only come from inside the process or a broken store now — are counted, kept on the
// dead-letter log and skipped, live and on every restart, and the events around them are reflected.
func TestUnreadableLogMessagesNeverStopTheConsumer(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.SnapshotEvery = -1 // every start replays the whole log
	s := start(t, cfg)
	js, err := jetstream.New(s.nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	bad := [][]byte{bodyBomb(t, arrowProbes(t, 5, 1795737600000)), []byte("not arrow at all"), arrowProbes(t, 3, 1795737600000)[:200]}
	for _, b := range bad {
		if _, err := js.Publish(ctx, eventlog.EventsSubject, b); err != nil {
			t.Fatal(err)
		}
	}
	action := nats.NewMsg(eventlog.EventsSubject)
	action.Header.Set(eventlog.HeaderType, eventlog.TypeAction)
	action.Data = []byte("{broken")
	if _, err := js.PublishMsg(ctx, action); err != nil {
		t.Fatal(err)
	}
	if code, ans := post(t, s, "application/x-ndjson", []byte(specExamples), nil); code != 200 || ans["accepted"] != 5.0 {
		t.Fatalf("ingest after the bad messages: %d %v", code, ans)
	}
	waitWatermark(t, s, time.Date(2026, 11, 27, 0, 0, 42, 0, time.UTC))
	if n := s.badMessages.Load(); n != 4 {
		t.Errorf("%d unreadable log messages counted, want 4", n)
	}
	dead, _, err := s.Log.Dead(ctx, 10)
	if err != nil || len(dead) != 4 {
		t.Errorf("dead letters %d (%v), want the 4 unreadable log messages", len(dead), err)
	}
	s.Stop(ctx)
	for restart := 0; restart < 2; restart++ {
		s2 := start(t, cfg)
		waitWatermark(t, s2, time.Date(2026, 11, 27, 0, 0, 42, 0, time.UTC))
		if c := cells(t, s2, ""); len(c) != distinctSpecCells(t) {
			t.Errorf("restart %d: %d cells, want %d", restart+1, len(c), distinctSpecCells(t))
		}
		if dead, _, _ := s2.Log.Dead(ctx, 100); len(dead) != 4 {
			t.Errorf("restart %d: %d dead letters, want the 4 kept once", restart+1, len(dead))
		}
		s2.Stop(ctx)
	}
}

// Row 3: one probe with ts in 2199 moved the watermark to 2199, after which every real event was too late.
// Now an event time more than MaxAhead ahead of the server's clock is rejected naming ts, and the
// watermark follows the real events.
func TestFutureEventTimesAreRejected(t *testing.T) {
	s := start(t, testConfig(t, t.TempDir()))
	now := time.Now().Truncate(time.Millisecond)
	line := func(ts int64, id string) string {
		return fmt.Sprintf(`{"kind":"probe","ts":%d,"id":%q,"lat":30.27,"lng":120.15,"speed_kmh":20}`, ts, id)
	}
	body := strings.Join([]string{
		line(time.Date(2199, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), "forger"),
		line(now.Add(10*time.Minute).UnixMilli(), "fast-clock"),
		line(now.UnixMilli(), "honest"),
	}, "\n")
	code, ans := post(t, s, "application/x-ndjson", []byte(body), nil)
	if code != 200 || ans["accepted"] != 1.0 || ans["rejected"] != 2.0 {
		t.Fatalf("answer %d %v, want 1 accepted and 2 rejected", code, ans)
	}
	for _, e := range ans["errors"].([]any) {
		if msg := e.(map[string]any)["error"].(string); !strings.Contains(msg, "field ts") || !strings.Contains(msg, "ahead") {
			t.Errorf("error %q, want one naming ts ahead of the clock", msg)
		}
	}
	// Over the Arrow path too.
	code, ans = post(t, s, ingest.ContentTypeArrow, arrowProbes(t, 3, time.Date(2199, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()), nil)
	if code != 400 || ans["rejected"] != 3.0 {
		t.Errorf("Arrow batch in 2199: %d %v, want 400 with 3 rejected", code, ans)
	}
	st := waitWatermark(t, s, now)
	if st.Watermark.After(now.Add(time.Minute)) {
		t.Errorf("watermark %v ran ahead of the real events (%v)", st.Watermark, now)
	}
	// The next real event is not late.
	post(t, s, "application/x-ndjson", []byte(line(now.Add(time.Second).UnixMilli(), "honest")), nil)
	waitWatermark(t, s, now.Add(time.Second))
	if st := statusOf(t, s, nil); st["events_too_late"] != 0.0 || st["events_late"] != 0.0 {
		t.Errorf("real events counted late: %v", st)
	}
}

// Row 4: a 300 KB gzip body that inflates past the limit was inflated whole into memory first (470 MB of
// RSS each, four in parallel 2.3 GB) before the 413. Now the body is inflated as it is decoded: four in
// parallel allocate a few MiB in all and each ends in 413.
func TestGzipBombIsDecodedAsItArrives(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Ingest.MaxDecoded = 64 << 20
	s := start(t, cfg)
	var zb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&zb, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for i := 0; i < 100; i++ { // 100 MiB of zero bytes: past the 64 MiB limit
		zw.Write(zeros)
	}
	zw.Close()
	if zb.Len() > 400<<10 {
		t.Fatalf("the bomb is %d bytes compressed", zb.Len())
	}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	var wg sync.WaitGroup
	codes := make([]int, 4)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", "http://"+s.Addr()+"/api/v1/events", bytes.NewReader(zb.Bytes()))
			req.Header.Set("Content-Type", "application/x-ndjson")
			req.Header.Set("Content-Encoding", "gzip")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	runtime.ReadMemStats(&m1)
	for i, c := range codes {
		if c != 413 {
			t.Errorf("bomb %d: status %d, want 413", i, c)
		}
	}
	// Allocated by the whole process meanwhile (the server is in it): the old code read 64 MiB+ per bomb.
	if got := m1.TotalAlloc - m0.TotalAlloc; got > 48<<20 {
		t.Errorf("four bombs allocated %d MiB, want a few", got>>20)
	}
	t.Logf("four gzip bombs of %d KiB: %d KiB allocated in the process", zb.Len()>>10, (m1.TotalAlloc-m0.TotalAlloc)>>10)
}

// The bytes being ingested at once are bounded: a batch that would pass the budget is answered 503 with
// Retry-After (nothing stored), and the budget is whole again afterwards.
func TestInFlightBudget(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Ingest.MaxInFlight = 256 << 10
	s := start(t, cfg)
	var sb strings.Builder
	sb.WriteString("[")
	for i := 0; sb.Len() < 1<<20; i++ {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `{"kind":"probe","ts":%d,"id":"v%d","lat":30.27,"lng":120.15,"speed_kmh":20}`, 1795737600000+int64(i), i)
	}
	sb.WriteString("]")
	req, _ := http.NewRequest("POST", "http://"+s.Addr()+"/api/v1/events", strings.NewReader(sb.String()))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("1 MiB array over a 256 KiB budget: %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if n := logMsgs(t, s); n != 0 {
		t.Errorf("the log holds %d messages after a refused batch", n)
	}
	if code, _ := post(t, s, "application/x-ndjson", []byte(specExamples), nil); code != 200 {
		t.Errorf("a small batch after: %d", code)
	}
	if n := s.Ingest.InFlight(); n != 0 {
		t.Errorf("%d bytes still in flight", n)
	}
}

// Row 5: a 6 MiB sensor type and a 30 MiB string were accepted and served back by every /api/v1/sensors (or
// made the log refuse the batch forever). Now string fields have limits (id 128 B, short fields 256 B, text
// 4 KiB), found before the string is allocated.
func TestLongStringsAreRejected(t *testing.T) {
	s := start(t, testConfig(t, t.TempDir()))
	sensor := func(typ, text string) string {
		return fmt.Sprintf(`{"kind":"sensor","ts":1795737600000,"id":"s1","lat":30.27,"lng":120.15,"type":%q,"value":1,"unit":"m","text":%q}`, typ, text)
	}
	// As NDJSON a line over 1 MiB is rejected as such, without being held; inside a JSON array (read
	// whole) or under that size the field and its limit are named.
	cases := []struct {
		name, ctype, body, want string
	}{
		{"6 MiB type in NDJSON", "application/x-ndjson", sensor(strings.Repeat("t", 6<<20), ""), "longer than 1048576 bytes"},
		{"30 MiB text in NDJSON", "application/x-ndjson", sensor("water_level", strings.Repeat("x", 30<<20)), "longer than 1048576 bytes"},
		{"6 MiB type in an array", "application/json", "[" + sensor(strings.Repeat("t", 6<<20), "") + "]", "field type: must be at most 256 bytes"},
		{"100 KiB text", "application/x-ndjson", sensor("water_level", strings.Repeat("x", 100<<10)), "field text: must be at most 4096 bytes"},
		{"257-byte unit", "application/x-ndjson", strings.Replace(sensor("water_level", ""), `"unit":"m"`, `"unit":"`+strings.Repeat("u", 257)+`"`, 1), "field unit: must be at most 256 bytes"},
		{"escaped id over 128 bytes", "application/x-ndjson", strings.Replace(sensor("w", ""), `"id":"s1"`, `"id":"`+strings.Repeat(`\u0041`, 129)+`"`, 1), "field id: must be at most 128 bytes"},
	}
	for _, c := range cases {
		code, ans := post(t, s, c.ctype, []byte(c.body), nil)
		msg := ""
		if errs, ok := ans["errors"].([]any); ok && len(errs) == 1 {
			msg = errs[0].(map[string]any)["error"].(string)
		}
		if code != 400 || !strings.Contains(msg, c.want) {
			t.Errorf("%s: %d %q, want 400 with %q", c.name, code, msg, c.want)
		}
	}
	if code, _ := post(t, s, "application/x-ndjson", []byte(sensor("water_level", "ok")), nil); code != 200 {
		t.Fatalf("a sensor within the limits: %d", code)
	}
	if n := logMsgs(t, s); n != 1 {
		t.Errorf("the log holds %d messages, want 1", n)
	}
}

// Row 6: speed_kmh 1e300 was accepted, became +Inf, and turned the cell's and the city's speed null. Now
// numbers outside their physical range (within float32) are rejected naming the field.
func TestOutOfRangeNumbersAreRejected(t *testing.T) {
	s := start(t, testConfig(t, t.TempDir()))
	base := `"ts":1795737600000,"id":"v","lat":30.27,"lng":120.15`
	for _, c := range []struct{ line, field string }{
		{`{"kind":"probe",` + base + `,"speed_kmh":1e300}`, "speed_kmh"},
		{`{"kind":"probe",` + base + `,"speed_kmh":601}`, "speed_kmh"},
		{`{"kind":"sensor",` + base + `,"type":"t","value":1e39,"unit":"m"}`, "value"},
		{`{"kind":"detector",` + base + `,"flow_vph":1e9,"occupancy":0.1,"speed_kmh":3,"interval_s":30}`, "flow_vph"},
		{`{"kind":"transit",` + base + `,"route":"K9","speed_kmh":3,"mode":"bus","delay_s":-1e8}`, "delay_s"},
	} {
		code, ans := post(t, s, "application/x-ndjson", []byte(c.line), nil)
		errs, _ := ans["errors"].([]any)
		if code != 400 || len(errs) != 1 || !strings.Contains(errs[0].(map[string]any)["error"].(string), "field "+c.field) {
			t.Errorf("%s: %d %v, want 400 naming %s", c.line, code, ans, c.field)
		}
	}
	post(t, s, "application/x-ndjson", []byte(`{"kind":"probe",`+base+`,"speed_kmh":42}`), nil)
	waitWatermark(t, s, time.UnixMilli(1795737600000))
	st := statusOf(t, s, nil)
	if kpi := st["kpis"].(map[string]any); kpi["mean_speed_kmh"] != 42.0 {
		t.Errorf("city mean speed %v, want 42", kpi["mean_speed_kmh"])
	}
}

// Row 8: a batch with a good and a bad line, while the dead-letter stream was unavailable, retried three
// times: every answer said "nothing accepted, retry", yet the good event was in the log three times. Now the
// rejected events are stored first and every batch has a message id (the body's hash without a key), so an
// answer of 503 means nothing was accepted, and the retry that succeeds stores the batch once.
func TestRetriesNeverDoubleAnEvent(t *testing.T) {
	s := start(t, testConfig(t, t.TempDir()))
	ctx := context.Background()
	js, _ := jetstream.New(s.nc)
	if err := js.DeleteStream(ctx, eventlog.DeadStream); err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"kind":"probe","ts":1795737600000,"id":"good","lat":30.27,"lng":120.15,"speed_kmh":20}
{"kind":"probe","ts":1795737600000,"id":"bad","lat":30.27,"lng":120.15,"speed_kmh":-1}`)
	for i := 0; i < 3; i++ {
		if code, ans := post(t, s, "application/x-ndjson", body, nil); code != 503 {
			t.Errorf("try %d without a dead-letter stream: %d %v, want 503", i+1, code, ans)
		}
	}
	if n := logMsgs(t, s); n != 0 {
		t.Errorf("after three answers of 'nothing accepted' the log holds %d messages", n)
	}
	// The stream comes back (as a restart would recreate it); the next retry is stored, and one more is
	// answered the same and stored once.
	if _, err := eventlog.Open(ctx, s.nc, eventlog.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if code, ans := post(t, s, "application/x-ndjson", body, nil); code != 200 || ans["accepted"] != 1.0 {
			t.Errorf("retry %d after the stream is back: %d %v", i+1, code, ans)
		}
	}
	if n := logMsgs(t, s); n != 1 {
		t.Errorf("the log holds %d messages, want 1", n)
	}
	if dead, _, _ := s.Log.Dead(ctx, 10); len(dead) != 1 {
		t.Errorf("%d dead letters, want the bad line once", len(dead))
	}
}

// Row 9: a different batch sent with an Idempotency-Key already used was answered {"accepted":2} and
// nothing was stored. Now the key is scoped to the caller and the body's hash: the same key with another
// body is 409; another caller may use the same key.
func TestIdempotencyKeysAreScopedToCallerAndBody(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.AuthFile = writeAuthFile(t, dir, "cam-a", "feed", "tok-a", "cam-b", "feed", "tok-b")
	s := start(t, cfg)
	a := map[string]string{"Authorization": "Bearer tok-a", "Idempotency-Key": "batch-7"}
	b := map[string]string{"Authorization": "Bearer tok-b", "Idempotency-Key": "batch-7"}
	first := []byte(strings.Join(strings.Split(specExamples, "\n")[:2], "\n"))
	other := []byte(strings.Join(strings.Split(specExamples, "\n")[2:4], "\n"))
	if code, ans := post(t, s, "application/x-ndjson", first, a); code != 200 || ans["accepted"] != 2.0 {
		t.Fatalf("first batch: %d %v", code, ans)
	}
	if code, ans := post(t, s, "application/x-ndjson", first, a); code != 200 || ans["accepted"] != 2.0 {
		t.Errorf("its retry: %d %v, want the same answer", code, ans)
	}
	if code, ans := post(t, s, "application/x-ndjson", other, a); code != 409 || !strings.Contains(fmt.Sprint(ans["error"]), "another batch") {
		t.Errorf("another batch with the same key: %d %v, want 409", code, ans)
	}
	if n := logMsgs(t, s); n != 1 {
		t.Errorf("the log holds %d messages, want 1", n)
	}
	if code, ans := post(t, s, "application/x-ndjson", other, b); code != 200 || ans["accepted"] != 2.0 {
		t.Errorf("another caller with the same key: %d %v, want it stored", code, ans)
	}
	if n := logMsgs(t, s); n != 2 {
		t.Errorf("the log holds %d messages, want 2", n)
	}
}

// Row 10: Host: evil.example on a loopback server without auth (DNS rebinding) got 200 on the API and 101
// on /ws. Now such a server answers only to loopback names.
func TestLoopbackServerAnswersOnlyLoopbackHosts(t *testing.T) {
	s := start(t, testConfig(t, t.TempDir()))
	do := func(path, host string, ws bool) int {
		req, _ := http.NewRequest("GET", "http://"+s.Addr()+path, nil)
		req.Host = host
		if ws {
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Sec-WebSocket-Version", "13")
			req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, host := range []string{"evil.example", "evil.example:80", "127.0.0.1.evil.example", "10.0.0.1"} {
		if c := do("/api/v1/status", host, false); c != http.StatusMisdirectedRequest {
			t.Errorf("Host %s on the API: %d, want 421", host, c)
		}
		if c := do("/ws", host, true); c != http.StatusMisdirectedRequest {
			t.Errorf("Host %s on /ws: %d, want 421", host, c)
		}
	}
	_, port, _ := net.SplitHostPort(s.Addr())
	for _, host := range []string{"localhost:" + port, "127.0.0.1:" + port, "[::1]:" + port, "app.localhost"} {
		if c := do("/api/v1/status", host, false); c != 200 {
			t.Errorf("Host %s: %d, want 200", host, c)
		}
	}
	if c := do("/ws", "localhost:"+port, true); c != http.StatusSwitchingProtocols {
		t.Errorf("/ws from localhost: %d, want 101", c)
	}
}

// Row 11: a body trickled at 1 byte per 2.5 s and idle keep-alive connections were still open after 36 s;
// nothing capped connections. Now the server has read, write and idle timeouts and a connection cap.
func TestSlowAndIdleConnectionsAreClosed(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.HTTP = HTTPLimits{ReadHeaderTimeout: time.Second, ReadTimeout: 2 * time.Second, IdleTimeout: time.Second, MaxConns: 3}
	s := start(t, cfg)
	closedWithin := func(c net.Conn, d time.Duration) bool {
		c.SetReadDeadline(time.Now().Add(d))
		_, err := io.Copy(io.Discard, c) // returns at EOF (closed by the server) or the deadline
		ne, timeout := err.(net.Error)
		return !(timeout && ne.Timeout())
	}
	// A trickled body.
	trickle, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer trickle.Close()
	fmt.Fprintf(trickle, "POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-ndjson\r\nContent-Length: 1000\r\n\r\n")
	start := time.Now()
	done := make(chan bool)
	go func() {
		for i := 0; i < 20; i++ {
			if _, err := trickle.Write([]byte("{")); err != nil {
				return
			}
			time.Sleep(500 * time.Millisecond)
		}
	}()
	go func() { done <- closedWithin(trickle, 8*time.Second) }()
	if !<-done {
		t.Error("a trickled body is still being read after 8 s (read timeout 2 s)")
	}
	t.Logf("trickled body cut after %v", time.Since(start).Round(100*time.Millisecond))
	// An idle keep-alive connection.
	idle, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	fmt.Fprintf(idle, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	br := bufio.NewReader(idle)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if !closedWithin(idle, 5*time.Second) {
		t.Error("an idle keep-alive connection is open after 5 s (idle timeout 1 s)")
	}
	// The cap: three silent connections hold every slot; a fourth client waits until one goes.
	var hold []net.Conn
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		hold = append(hold, c)
	}
	client := http.Client{Timeout: 500 * time.Millisecond}
	if resp, err := client.Get("http://" + s.Addr() + "/healthz"); err == nil {
		resp.Body.Close()
		t.Error("a fourth connection was served while three held the cap")
	}
	for _, c := range hold {
		c.Close()
	}
	client.Timeout = 5 * time.Second
	if resp, err := client.Get("http://" + s.Addr() + "/healthz"); err != nil {
		t.Errorf("after the held connections closed: %v", err)
	} else {
		resp.Body.Close()
	}
}

// Row 12: replay speed=NaN was accepted and GET /api/v1/replays then answered 200 with an empty body or
// invalid JSON. Now the speed must be a number from 0 to MaxSpeed.
func TestReplaySpeedIsValidated(t *testing.T) {
	s := start(t, testConfig(t, t.TempDir()))
	post(t, s, "application/x-ndjson", []byte(specExamples), nil)
	tok, _ := os.ReadFile(s.AdminTokenPath())
	admin := "Bearer " + strings.TrimSpace(string(tok))
	call := func(method, path, body string) (int, []byte) {
		req, _ := http.NewRequest(method, "http://"+s.Addr()+path, strings.NewReader(body))
		req.Header.Set("Authorization", admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, data
	}
	code, data := call("POST", "/api/v1/replays", `{"paused":true}`)
	if code != 201 {
		t.Fatalf("create replay: %d %s", code, data)
	}
	var sess struct {
		ID string `json:"id"`
	}
	json.Unmarshal(data, &sess)
	for _, x := range []string{"NaN", "nan", "+Inf", "-1", "1e300"} {
		if code, data := call("POST", "/api/v1/replays/"+sess.ID+"/speed?speed="+x, ""); code != 400 {
			t.Errorf("speed=%s: %d %s, want 400", x, code, data)
		}
	}
	if code, data := call("POST", "/api/v1/replays", `{"speed":1e300}`); code != 400 {
		t.Errorf("create with speed 1e300: %d %s, want 400", code, data)
	}
	code, data = call("GET", "/api/v1/replays", "")
	var list []map[string]any
	if code != 200 || json.Unmarshal(data, &list) != nil || len(list) != 1 {
		t.Errorf("list after the refused speeds: %d %q, want valid JSON with the session", code, data)
	}
}

// "Also" of the issue: security headers; access_token only on websocket paths; the feed role writes and
// reads nothing; replay sessions are bounded per planner; replay errors name no server path.
func TestHeadersTokensRolesQuotasAndPaths(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.AuthFile = writeAuthFile(t, dir, "cam", "feed", "feedtok", "wall", "viewer", "viewtok", "ana", "planner", "ana-tok", "ben", "planner", "ben-tok")
	s := start(t, cfg)
	get := func(path string, hdr map[string]string) *http.Response {
		req, _ := http.NewRequest("GET", "http://"+s.Addr()+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	resp := get("/", nil)
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("X-Content-Type-Options %q", resp.Header.Get("X-Content-Type-Options"))
	}
	if c := get("/api/v1/status?access_token=viewtok", nil).StatusCode; c != 401 {
		t.Errorf("access_token on /api/v1/status: %d, want 401 (only websockets take it)", c)
	}
	if c := get("/api/v1/status", map[string]string{"Authorization": "Bearer viewtok"}).StatusCode; c != 200 {
		t.Errorf("viewer reads status: %d", c)
	}
	wsReq := map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
	if c := get("/ws?access_token=viewtok", wsReq).StatusCode; c != 101 {
		t.Errorf("access_token on /ws: %d, want 101", c)
	}
	for _, p := range []string{"/api/v1/status", "/api/v1/cells", "/api/v1/sensors", "/api/v1/incidents", "/metrics"} {
		if c := get(p, map[string]string{"Authorization": "Bearer feedtok"}).StatusCode; c != 403 {
			t.Errorf("feed token reads %s: %d, want 403", p, c)
		}
	}
	create := func(tok, body string) (int, string) {
		req, _ := http.NewRequest("POST", "http://"+s.Addr()+"/api/v1/replays", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}
	for i := 0; i < 2; i++ {
		if c, body := create("ana-tok", `{"paused":true}`); c != 201 {
			t.Fatalf("ana's replay %d: %d %s", i+1, c, body)
		}
	}
	if c, body := create("ana-tok", `{"paused":true}`); c != 429 || !strings.Contains(body, "ana") {
		t.Errorf("ana's third replay: %d %s, want 429 naming her quota", c, body)
	}
	if c, body := create("ben-tok", `{"paused":true}`); c != 201 {
		t.Errorf("ben's first replay while ana holds two: %d %s", c, body)
	}
	c, body := create("ben-tok", `{"file":"missing.parquet"}`)
	if c != 400 || !strings.Contains(body, "missing.parquet") || strings.Contains(body, dir) || strings.Contains(body, "/imports") {
		t.Errorf("replay of a missing file: %d %s, want 400 naming the file and no server path", c, body)
	}
}

// --res and --bucket were baked into the log and the snapshots without being recorded, so a restart with
// another --res silently mixed resolutions. Now the log records its layout (resolution, bucket, schema) in
// its stream's metadata and the snapshots in their manifest: a start with another --res is refused naming
// the recorded one; one with another --bucket skips the snapshot and recomputes from the log.
func TestLogAndSnapshotsRecordTheirLayout(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	s := start(t, cfg)
	if code, _ := post(t, s, "application/x-ndjson", []byte(specExamples), nil); code != 200 {
		t.Fatal(code)
	}
	waitWatermark(t, s, time.Date(2026, 11, 27, 0, 0, 42, 0, time.UTC))
	want := cells(t, s, "window=900s")
	js, _ := jetstream.New(s.nc)
	st, err := js.Stream(context.Background(), eventlog.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	md := st.CachedInfo().Config.Metadata
	if md[eventlog.MetaRes] != "9" || md[eventlog.MetaBucket] != "10s" || md[eventlog.MetaSchema] != engine.SchemaVersion {
		t.Errorf("stream metadata %v, want res 9, bucket 10s, the schema", md)
	}
	if err := s.Stop(context.Background()); err != nil { // writes a snapshot
		t.Fatal(err)
	}
	other := cfg
	other.Engine.Res = 10
	if s2, err := Start(context.Background(), other); err == nil {
		s2.Stop(context.Background())
		t.Fatal("a start with --res 10 on a log of --res 9 was accepted")
	} else if !strings.Contains(err.Error(), "--res 9") {
		t.Errorf("refusal %q, want it to name --res 9", err)
	}
	var logs bytes.Buffer
	var mu sync.Mutex
	other = cfg
	other.Engine.Bucket = 5 * time.Second
	other.Logger = log.New(&lockedBuffer{mu: &mu, b: &logs}, "", 0)
	s3 := start(t, other)
	waitWatermark(t, s3, time.Date(2026, 11, 27, 0, 0, 42, 0, time.UTC))
	mu.Lock()
	if !strings.Contains(logs.String(), "another layout") {
		t.Errorf("the snapshot of bucket 10 s was not skipped with bucket 5 s; log:\n%s", logs.String())
	}
	mu.Unlock()
	got := cells(t, s3, "window=900s")
	if len(got) != len(want) {
		t.Errorf("recomputed from the log: %d cells, want %d", len(got), len(want))
	}
	for k, c := range want {
		if got[k].Events != c.Events {
			t.Errorf("cell %s: %d events recomputed, want %d", k, got[k].Events, c.Events)
		}
	}
}

type lockedBuffer struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// Row 5, the websockets: 900 subscribe messages on three websockets grew RSS from 132 MB to 1.33 GB and
// spent 4.6 s of CPU under the hub's lock (a snapshot for each). Now subscribes are applied at most
// SubscribeRate a second after a burst of SubscribeBurst, the latest replacing those that wait, and a client
// that floods messages is cut off (1008).
func TestSubscribeFloodsAreBounded(t *testing.T) {
	s := start(t, testConfig(t, t.TempDir()))
	post(t, s, "application/x-ndjson", []byte(specExamples), nil)
	waitWatermark(t, s, time.Date(2026, 11, 27, 0, 0, 42, 0, time.UTC))
	empty := []float64{10, 10, 10.01, 10.01} // no cells there
	city := []float64{120.1, 30.2, 120.2, 30.3}
	// Three flooders: 300 subscribes each, as fast as they go.
	var wg sync.WaitGroup
	for k := 0; k < 3; k++ {
		c := dial(t, s)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				if c.WriteJSON(map[string]any{"op": "subscribe", "bbox": empty}) != nil {
					break
				}
			}
		}()
		snapshots := 0
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		for {
			var m wsMsg
			err := c.ReadJSON(&m)
			if err != nil {
				if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
					t.Errorf("flooder %d: %v, want a close with 1008", k, err)
				}
				break
			}
			if m.Type == "snapshot" {
				snapshots++
			}
		}
		if snapshots > 2*api.SubscribeBurst {
			t.Errorf("flooder %d got %d snapshots for 300 subscribes, want at most about %d", k, snapshots, api.SubscribeBurst)
		}
	}
	wg.Wait()
	// A map panned quickly: 100 subscribes, the last on the city. Few are applied, the last one is.
	c := dial(t, s)
	readUntil(t, c, func(m wsMsg) bool { return m.Type == "hello" })
	for i := 0; i < 99; i++ {
		c.WriteJSON(map[string]any{"op": "subscribe", "bbox": empty})
	}
	c.WriteJSON(map[string]any{"op": "subscribe", "bbox": city})
	snapshots := 0
	last := readUntil(t, c, func(m wsMsg) bool {
		if m.Type == "snapshot" {
			snapshots++
			return len(m.Cells) > 0
		}
		return false
	})
	if len(last.Cells) != distinctSpecCells(t) {
		t.Errorf("the last viewport's snapshot has %d cells, want %d", len(last.Cells), distinctSpecCells(t))
	}
	if snapshots > api.SubscribeBurst+2 {
		t.Errorf("%d snapshots for 100 quick subscribes, want at most %d", snapshots, api.SubscribeBurst+2)
	}
}

// Dispatches and signal-plan decisions are operator actions in the log: a replay of the log meets them
// where they were made, with the incident actions.
func TestDecisionsAppearInReplays(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Network = geo.GenerateWestLake(1)
	s := start(t, cfg)
	base := "http://" + s.Addr()
	tok := adminToken(t, s)
	post(t, s, "application/x-ndjson", []byte(specExamples), nil)
	var incident string
	deadline := time.Now().Add(20 * time.Second)
	for incident == "" && time.Now().Before(deadline) {
		if list := incidents(t, s, "", nil); len(list) > 0 {
			incident = list[0].ID
		}
		time.Sleep(20 * time.Millisecond)
	}
	if incident == "" {
		t.Fatal("no incident from the spec examples")
	}
	if code, b := call(t, "POST", base+"/api/v1/dispatch", tok, map[string]string{"incident_id": incident, "unit_id": "amb-07"}); code != 201 {
		t.Fatalf("dispatch: %d %s", code, b)
	}
	var node string
	for _, n := range cfg.Network.Nodes() {
		if n.Signalised {
			node = n.ID
			break
		}
	}
	if code, b := call(t, "POST", base+"/api/v1/intersections/"+node+"/plan", tok, map[string]string{"decision": "reject", "method": "webster"}); code != 201 {
		t.Fatalf("plan decision: %d %s", code, b)
	}
	if code, _ := action(t, s, incident, "confirmed", tok); code != 200 {
		t.Fatalf("confirm: %d", code)
	}
	code, b := call(t, "POST", base+"/api/v1/replays", tok, map[string]any{"speed": 0})
	if code != 201 {
		t.Fatalf("replay: %d %s", code, b)
	}
	var sess struct {
		ID string `json:"id"`
	}
	json.Unmarshal(b, &sess)
	waitReplay(t, base, sess.ID)
	code, b = call(t, "GET", base+"/api/v1/replays/"+sess.ID+"/decisions", tok, nil)
	var list []struct {
		Type     string          `json:"type"`
		Decision json.RawMessage `json:"decision"`
	}
	if code != 200 || json.Unmarshal(b, &list) != nil {
		t.Fatalf("decisions: %d %s", code, b)
	}
	kinds := map[string]int{}
	for _, d := range list {
		var a struct {
			Kind   string `json:"kind"`
			Status string `json:"status"`
		}
		json.Unmarshal(d.Decision, &a)
		kinds[d.Type+":"+a.Kind+a.Status]++
	}
	if kinds["dispatch:dispatch"] != 1 || kinds["dispatch:plan"] != 1 || kinds["action:confirmed"] != 1 {
		t.Errorf("decisions met by the replay: %v, want the dispatch, the plan decision and the confirmation", kinds)
	}
}
