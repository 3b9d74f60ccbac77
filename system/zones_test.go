package system

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"citybrain/api/cap"
	"citybrain/api/webhook"
)

// A zone around the spec examples' crash (30.2506, 120.1702), drawn as a flood-prone underpass.
const testZone = `{"id":"underpass-1","name":"Yan'an Rd underpass","kind":"underpass",
 "polygon":[[120.168,30.249],[120.172,30.249],[120.172,30.252],[120.168,30.252],[120.168,30.249]],
 "rules":[{"type":"incident","incident_types":["crash"]},{"type":"unit_enter"}]}`

const zoneEvents = `{"kind":"report","ts":"2026-11-27T08:00:41+08:00","id":"call-122-88231","lat":30.2506,"lng":120.1702,"type":"crash","severity":3,"source":"hotline-122"}
{"kind":"video","ts":"2026-11-27T08:00:42+08:00","id":"cam-0412","lat":30.2504,"lng":120.1699,"type":"crash","confidence":0.9}
{"kind":"sensor","ts":"2026-11-27T08:00:43+08:00","id":"wl-yanan-1","lat":30.2503,"lng":120.1705,"type":"water_level","value":0.42,"unit":"m","threshold":0.25}
{"kind":"unit","ts":"2026-11-27T08:00:44+08:00","id":"amb-07","lat":30.2505,"lng":120.1700,"unit_type":"ambulance","status":"en_route"}
{"kind":"probe","ts":"2026-11-27T08:01:30+08:00","id":"veh-1","lat":30.2611,"lng":120.1588,"speed_kmh":30}`

type alertDoc struct {
	ID         string   `json:"id"`
	ZoneID     string   `json:"zone_id"`
	Rule       string   `json:"rule"`
	Subject    string   `json:"subject"`
	Status     string   `json:"status"`
	FiredAt    string   `json:"fired_at"`
	IncidentID string   `json:"incident_id"`
	Closures   []string `json:"closures"`
	Evidence   []struct {
		Kind string `json:"kind"`
		ID   string `json:"id"`
	} `json:"evidence"`
}

func do(t *testing.T, method, url, token string, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// waitAlerts polls /api/v1/alerts until pred holds (or fails after 20 s).
func waitAlerts(t *testing.T, s *System, pred func([]alertDoc) bool) []alertDoc {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var got []alertDoc
	for time.Now().Before(deadline) {
		got = nil
		getJSON(t, "http://"+s.Addr()+"/api/v1/alerts", &got)
		if pred(got) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("alerts never matched: %+v", got)
	return nil
}

func hasAlerts(list []alertDoc) bool {
	rules := map[string]bool{}
	for _, a := range list {
		rules[a.Rule] = true
	}
	return rules["incident"] && rules["hazard"] && rules["unit_enter"]
}

// A commander's zone is a log action: the rules fire on a crash, a water level over its threshold (a
// hazard: the underpass's links are to be closed) and an ambulance entering; alerts go out on the websocket
// and are listed at /api/v1/alerts; after restarts (from a snapshot, and from the log alone) the zone and the
// same alerts, with the same ids, are back.
func TestZonesAlertsSurviveRestart(t *testing.T) {
	for _, every := range []time.Duration{0, -1} {
		t.Run(map[bool]string{true: "snapshot", false: "log-only"}[every == 0], func(t *testing.T) { zonesCase(t, every) })
	}
}

func zonesCase(t *testing.T, every time.Duration) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.SnapshotEvery = every
	s := start(t, cfg)
	base := "http://" + s.Addr()
	tok := adminToken(t, s)

	if code, _ := do(t, "POST", base+"/api/v1/zones", "", []byte(testZone)); code != 401 {
		t.Fatalf("zone without token: %d, want 401", code)
	}
	if code, body := do(t, "POST", base+"/api/v1/zones", tok, []byte(`{"name":"bad","polygon":[[1,2]]}`)); code != 400 || !strings.Contains(string(body), "polygon") {
		t.Fatalf("bad zone: %d %s", code, body)
	}
	code, body := do(t, "POST", base+"/api/v1/zones", tok, []byte(testZone))
	if code != 201 {
		t.Fatalf("create zone: %d %s", code, body)
	}
	if code, _ := do(t, "POST", base+"/api/v1/zones", tok, []byte(testZone)); code != 409 {
		t.Fatalf("same zone again: %d, want 409", code)
	}
	ws := dial(t, s)
	ws.WriteJSON(map[string]any{"op": "subscribe", "layers": []string{"alerts"}})
	readUntil(t, ws, func(m wsMsg) bool { return m.Type == "snapshot" })

	if code, out := post(t, s, "application/x-ndjson", []byte(zoneEvents), nil); code != 200 {
		t.Fatalf("post: %d %v", code, out)
	}
	before := waitAlerts(t, s, func(l []alertDoc) bool {
		for _, a := range l {
			if a.Rule == "hazard" && a.IncidentID == "" {
				return false // named once the engine's incident carries the reading
			}
		}
		return hasAlerts(l)
	})
	for _, a := range before {
		if a.ZoneID != "underpass-1" || len(a.Evidence) == 0 {
			t.Errorf("alert without zone or evidence: %+v", a)
		}
		if a.Rule == "incident" && (a.IncidentID == "" || a.Subject != a.IncidentID) {
			t.Errorf("incident alert names no incident: %+v", a)
		}
		if a.Rule == "hazard" && (a.Subject != "wl-yanan-1" || a.IncidentID == "") {
			t.Errorf("hazard alert: %+v", a)
		}
	}
	// The websocket carried them.
	seen := map[string]bool{}
	ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	for len(seen) < len(before) {
		_, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("websocket: %v (alerts seen %v)", err, seen)
		}
		var m struct {
			Type   string     `json:"type"`
			Alerts []alertDoc `json:"alerts"`
		}
		json.Unmarshal(data, &m)
		for _, a := range m.Alerts {
			seen[a.ID] = true
		}
	}
	ws.Close()

	// A replay of the log raises the same alerts.
	code, body = do(t, "POST", base+"/api/v1/replays", tok, []byte(`{"speed":0}`))
	if code != 201 && code != 200 {
		t.Fatalf("replay: %d %s", code, body)
	}
	var rep struct {
		ID string `json:"id"`
	}
	json.Unmarshal(body, &rep)
	waitReplay(t, base, rep.ID)
	var replayed []alertDoc
	if code := getJSON(t, base+"/api/v1/replays/"+rep.ID+"/alerts", &replayed); code != 200 {
		t.Fatalf("replay alerts: %d", code)
	}
	if a, b := alertKeys(before), alertKeys(replayed); !sameMap(a, b) {
		t.Fatalf("replay alerts differ:\nlive   %v\nreplay %v", a, b)
	}

	if err := s.Stop(context.Background()); err != nil {
		t.Fatalf("stop: %v", err)
	}
	s2 := start(t, cfg)
	after := waitAlerts(t, s2, func(l []alertDoc) bool { return len(l) == len(before) })
	if a, b := alertKeys(before), alertKeys(after); len(a) != len(b) || !sameMap(a, b) {
		t.Fatalf("alerts after restart differ:\nbefore %v\nafter  %v", a, b)
	}
	var z []map[string]any
	getJSON(t, "http://"+s2.Addr()+"/api/v1/zones", &z)
	if len(z) != 1 || z[0]["id"] != "underpass-1" {
		t.Fatalf("zones after restart: %v", z)
	}
	// Deleting the zone resolves its alerts.
	tok2 := adminToken(t, s2)
	if code, body := do(t, "DELETE", "http://"+s2.Addr()+"/api/v1/zones/underpass-1", tok2, nil); code != 204 {
		t.Fatalf("delete: %d %s", code, body)
	}
	waitAlerts(t, s2, func(l []alertDoc) bool {
		for _, a := range l {
			if a.Status == "active" {
				return false
			}
		}
		return len(l) == len(before)
	})
}

func alertKeys(l []alertDoc) map[string]string {
	m := map[string]string{}
	for _, a := range l {
		m[a.ID] = a.Rule + "/" + a.Subject + "/" + a.FiredAt
	}
	return m
}

func sameMap(a, b map[string]string) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return len(a) == len(b)
}

// One incident is published as CAP 1.2: Alert when confirmed, Update when it changes, Cancel when an operator
// clears it — at /api/v1/cap.atom and on NATS citybrain.out.cap; zone alerts reach a webhook, signed.
func TestCAPFeedAndWebhooks(t *testing.T) {
	hookGot := make(chan []byte, 64)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify("a-secret-of-16-bytes-or-more", r, body); err != nil {
			t.Errorf("webhook signature: %v", err)
		}
		hookGot <- body
	}))
	defer hook.Close()
	cfg := testConfig(t, t.TempDir())
	cfg.Webhooks = []webhook.Target{{URL: hook.URL, Secret: "a-secret-of-16-bytes-or-more"}}
	s := start(t, cfg)
	base := "http://" + s.Addr()
	tok := adminToken(t, s)
	nc, err := nats.Connect(s.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	capMsgs := make(chan *nats.Msg, 64)
	sub, _ := nc.ChanSubscribe(CAPSubject, capMsgs)
	defer sub.Unsubscribe()
	nc.Flush()

	if code, body := do(t, "POST", base+"/api/v1/zones", tok, []byte(testZone)); code != 201 {
		t.Fatalf("zone: %d %s", code, body)
	}
	post(t, s, "application/x-ndjson", []byte(strings.Split(zoneEvents, "\n")[0]+"\n"+strings.Split(zoneEvents, "\n")[1]), nil)
	var incID string
	waitCAP := func(want ...string) []string {
		t.Helper()
		var types []string
		deadline := time.After(20 * time.Second)
		for len(types) < len(want) {
			select {
			case m := <-capMsgs:
				if err := cap.Check(m.Data); err != nil {
					t.Fatalf("NATS CAP message invalid: %v\n%s", err, m.Data)
				}
				if strings.Contains(string(m.Data), "citybrain-incident-") {
					types = append(types, m.Header.Get("Cap-Msg-Type"))
				}
			case <-deadline:
				t.Fatalf("CAP messages %v, want %v", types, want)
			}
		}
		return types
	}
	// Confirm it (an operator), unless the evidence already did.
	deadline := time.Now().Add(20 * time.Second)
	for incID == "" && time.Now().Before(deadline) {
		for _, in := range incidents(t, s, "", nil) {
			incID = in.ID
		}
		time.Sleep(20 * time.Millisecond)
	}
	if incID == "" {
		t.Fatal("no incident")
	}
	action(t, s, incID, "confirmed", tok)
	if got := waitCAP("Alert"); got[0] != "Alert" {
		t.Fatalf("first CAP message %v", got)
	}
	// A caller reports it as more severe: the incident changes, an Update goes out.
	post(t, s, "application/x-ndjson", []byte(`{"kind":"report","ts":"2026-11-27T08:00:50+08:00","id":"call-2","lat":30.2506,"lng":120.1702,"type":"crash","severity":5}`), nil)
	if got := waitCAP("Update"); got[0] != "Update" {
		t.Fatalf("second CAP message %v", got)
	}
	action(t, s, incID, "cleared", tok)
	if got := waitCAP("Cancel"); got[0] != "Cancel" {
		t.Fatalf("third CAP message %v", got)
	}
	// The Atom feed has the three, newest first, each valid.
	resp, err := http.Get(base + "/api/v1/cap.atom")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var feed struct {
		Entries []struct {
			Content struct {
				Inner []byte `xml:",innerxml"`
			} `xml:"content"`
		} `xml:"entry"`
	}
	if err := xml.Unmarshal(data, &feed); err != nil {
		t.Fatalf("atom: %v", err)
	}
	var kinds []string
	for _, e := range feed.Entries {
		doc := []byte(strings.TrimSpace(string(e.Content.Inner)))
		if err := cap.Check(doc); err != nil {
			t.Fatalf("atom entry invalid: %v\n%s", err, doc)
		}
		var a cap.Alert
		xml.Unmarshal(doc, &a)
		if strings.HasPrefix(a.Identifier, "citybrain-incident-") {
			kinds = append(kinds, a.MsgType)
		}
	}
	if strings.Join(kinds, ",") != "Cancel,Update,Alert" {
		t.Fatalf("atom incident messages %v, want Cancel,Update,Alert", kinds)
	}
	// The zone's incident alert reached the webhook.
	select {
	case body := <-hookGot:
		if !strings.Contains(string(body), `"zone_id":"underpass-1"`) {
			t.Fatalf("webhook body %s", body)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no webhook delivery")
	}
}
