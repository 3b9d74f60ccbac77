package incident

import (
	"fmt"
	"math"
	"testing"

	"citybrain/engine/schema"
	"citybrain/geo"
)

// chain is a straight road of n links of 300 m going east: link i runs from node i to node i+1.
func chain(t *testing.T, n int) *geo.Network {
	t.Helper()
	mLng := 1 / (111320.0 * math.Cos(lat*math.Pi/180))
	pt := func(x float64) geo.LatLng { return geo.LatLng{Lat: lat, Lng: lng + x*mLng} }
	var nodes []geo.Node
	var links []geo.Link
	for i := 0; i <= n; i++ {
		nodes = append(nodes, geo.Node{ID: fmt.Sprint("N", i), LatLng: pt(300 * float64(i)), Signalised: true})
	}
	for i := 0; i < n; i++ {
		links = append(links, geo.Link{ID: fmt.Sprint("L", i), From: fmt.Sprint("N", i), To: fmt.Sprint("N", i+1), Lanes: 1,
			SpeedLimitKmh: 50, Geometry: []geo.LatLng{pt(300 * float64(i)), pt(300 * float64(i+1))}})
	}
	net, err := geo.NewNetwork("test", nodes, links)
	if err != nil {
		t.Fatal(err)
	}
	return net
}

// linkEvidence is the blockage judge's evidence on link li of net, 250 m along it, with weight w.
func linkEvidence(t *testing.T, net *geo.Network, li int, ts int64, w float64) Evidence {
	t.Helper()
	p, _ := net.Links()[li].PointAt(250)
	cell, err := geo.CellOf(p.Lat, p.Lng, 9)
	if err != nil {
		t.Fatal(err)
	}
	return Evidence{Kind: schema.KindProbe, Source: fmt.Sprintf("link:%d", li), Type: trafficType, TS: ts, Lat: p.Lat,
		Lng: p.Lng, Cell: cell, Weight: w, LinkRef: int32(li) + 1}
}

// Candidates on links that are not an incident's own corroborate it but do not carry it along the road, keep
// it open or let it swallow a call about another event; candidates on its own links keep it open.
func TestCandidatesDoNotCarryAnIncidentAway(t *testing.T) {
	net := chain(t, 8)
	tr := NewTracker(30_000)
	tr.SetTopology(NewTopology(net, 9))
	alarm := linkEvidence(t, net, 0, t0, 0.7)
	tr.Track(t0, []Evidence{alarm})
	inc := tr.Incidents()
	if len(inc) != 1 || inc[0].Status != StatusSuspected {
		t.Fatalf("an alarm made %+v, want one suspected incident", inc)
	}
	// Twenty minutes of candidates moving down the road, a link every two minutes, each link one step
	// downstream of the last (each would have reset the incident's position to itself).
	var last Incident
	for k := 1; k <= 120; k++ {
		ts := t0 + int64(k)*10_000
		li := min(7, 1+(k-1)/12)
		tr.Track(ts-30_000, []Evidence{linkEvidence(t, net, li, ts, 0.4)})
		inc = tr.Incidents()
		if len(inc) != 1 {
			t.Fatalf("at %d s: %d incidents, want the one (candidates make none of their own next to it)", k*10, len(inc))
		}
		last = inc[0]
		if d := geo.DistanceM(geo.LatLng{Lat: alarm.Lat, Lng: alarm.Lng}, geo.LatLng{Lat: last.Lat, Lng: last.Lng}); d > 1 {
			t.Fatalf("at %d s the incident moved %.0f m along the road with candidates", k*10, d)
		}
	}
	if last.Status != StatusCleared || last.ClearedAt != t0 {
		t.Errorf("after 20 min of candidates elsewhere: status %q cleared at %d, want cleared at the alarm (%d)", last.Status, last.ClearedAt, t0)
	}
	if last.EvidenceCount < 2 {
		t.Errorf("evidence count %d: the candidates did not join the incident while it was open (they corroborate it)", last.EvidenceCount)
	}

	// Candidates on the incident's own link keep it open.
	tr2 := NewTracker(30_000)
	tr2.SetTopology(NewTopology(net, 9))
	tr2.Track(t0, []Evidence{linkEvidence(t, net, 3, t0, 0.7)})
	for k := 1; k <= 120; k++ {
		ts := t0 + int64(k)*10_000
		tr2.Track(ts-30_000, []Evidence{linkEvidence(t, net, 3, ts, 0.4)})
	}
	if inc := tr2.Incidents(); len(inc) != 1 || !inc[0].Active() || inc[0].LastEvidenceAt != t0+1_200_000 {
		t.Errorf("candidates on its own link: %+v, want one incident still open with its last evidence at 20 min", inc)
	}
	// A call 1.2 km down the road, about something else, is an incident of its own.
	p, _ := net.Links()[7].PointAt(150)
	cell, _ := geo.CellOf(p.Lat, p.Lng, 9)
	ts := t0 + 1_210_000
	tr2.Track(ts-30_000, []Evidence{{Kind: schema.KindReport, Source: "hotline", Type: "crash", TS: ts, Lat: p.Lat, Lng: p.Lng,
		Cell: cell, Weight: 0.69, Sev: 3}})
	if inc := tr2.Incidents(); len(inc) != 2 {
		t.Errorf("a call 1.2 km away joined the open incident: %d incidents, want 2", len(inc))
	}
}
