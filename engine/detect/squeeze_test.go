package detect

import (
	"cmp"
	"fmt"
	"slices"
	"testing"
)

// A link of lanes lanes, 300 m, ending at a signal, the link after it, and six other links of the network
// (300 m, free traffic, squeezeLinks' fixes on link 2 + k for vehicle k mod 6 of each start): the network's
// history of squeezes is not the one link's.
func squeezeLinks(lanes int) []Link {
	l := twoLinks()
	l[0].Lanes, l[1].Lanes = lanes, lanes
	for range 6 {
		l = append(l, Link{LengthM: 300, FreeKmh: 50, Lanes: 2})
	}
	return l
}

// profileFixes are the fixes of a vehicle every spacing ms from start to until, each driving link 0 then
// link 1 at kmh(vehicle's start time, its state, its position), and one more on another link (2 to 7) at
// 30 km/h.
func profileFixes(start, spacing, until int64, kmh func(s, ts int64, pos float64) float64) []stateFix {
	var all []stateFix
	for k, s := 0, start; s < until; k, s = k+1, s+spacing {
		pos := 0.0
		for ts := s; ts < until && pos < 600; ts += 5000 {
			v := kmh(s, ts, pos)
			link, off := int32(0), pos
			if pos >= 300 {
				link, off = 1, pos-300
			}
			all = append(all, stateFix{fmt.Sprintf("v%d", k), ts, link, Fraction(300, off), v})
			pos += v / 3.6 * 5
		}
		for ts, pos := s, 0.0; ts < until && pos < 300; ts, pos = ts+5000, pos+30/3.6*5 {
			all = append(all, stateFix{fmt.Sprintf("w%d", k), ts, int32(2 + k%6), Fraction(300, pos), 30})
		}
	}
	slices.SortStableFunc(all, func(a, b stateFix) int { return cmp.Compare(a.ts, b.ts) })
	return all
}

// squeezeFixes are profileFixes at 30 km/h, at 15 km/h from 30 m before link 0's point at (m) to 15 m past it
// when squeezed says so at the vehicle's start time.
func squeezeFixes(start, spacing, until int64, at float64, squeezed func(ts int64) bool) []stateFix {
	return profileFixes(start, spacing, until, func(s, _ int64, pos float64) float64 {
		if squeezed(s) && pos >= at-30 && pos <= at+15 {
			return 15
		}
		return 30
	})
}

// squeezeRows feeds the fixes to a tracker of links and returns link 0's rows.
func squeezeRows(links []Link, all []stateFix, until int64) []Features {
	tk := NewTracker(links, 10_000)
	var out, rows []Features
	feedFixes(tk, all, nil, t0, until, &out)
	for _, f := range out {
		if f.Link == 0 {
			rows = append(rows, f)
		}
	}
	return rows
}

// firstSqueezed is the first row judged squeezed at or after from (nil: none).
func firstSqueezed(rows []Features, from int64) *Features {
	for i := range rows {
		if rows[i].T >= from && rows[i].Squeeze.Squeezed {
			return &rows[i]
		}
	}
	return nil
}

// The squeeze judge: vehicles slowed at one point of a two-lane link and back to speed past it are a lane
// closed there when the link's own history there is free traffic, and not where the link always slows them
// (a habitual slow spot: a bend, a merge); nor on a link of one lane (closing its lane closes the road).
func TestASqueezeIsJudgedAgainstTheLinksOwnHistoryAtThatPoint(t *testing.T) {
	onset, until := t0+40*60_000, t0+50*60_000
	fresh := squeezeFixes(t0, 20_000, until, 150, func(ts int64) bool { return ts >= onset })
	always := squeezeFixes(t0, 20_000, until, 150, func(int64) bool { return true })
	elsewhere := squeezeFixes(t0, 20_000, until, 150, func(ts int64) bool { return ts >= onset })
	// The same link whose history has its slow spot 100 m further on.
	for i, f := range squeezeFixes(t0, 20_000, onset, 250, func(int64) bool { return true }) {
		if i < len(elsewhere) && elsewhere[i].ts < onset {
			elsewhere[i] = f
		}
	}
	rows := squeezeRows(squeezeLinks(2), fresh, until)
	f := firstSqueezed(rows, onset)
	if f == nil {
		t.Fatalf("a new squeeze at 150 m of a two-lane link is never judged")
	}
	if d := f.T - onset; d > 3*60_000 || f.Squeeze.N < squeezeMinN || f.Squeeze.OffM < 120 || f.Squeeze.OffM > 165 {
		t.Errorf("a new squeeze at 150 m: judged %d s after its onset, %d vehicles at %.0f m; want within 3 minutes, at 120-165 m", d/1000, f.Squeeze.N, f.Squeeze.OffM)
	}
	if f := firstSqueezed(rows, t0); f != nil && f.T < onset {
		t.Errorf("free traffic judged squeezed at %d s", (f.T-t0)/1000)
	}
	if f := firstSqueezed(squeezeRows(squeezeLinks(2), always, until), t0+30*60_000); f != nil {
		t.Errorf("a habitual slow spot judged squeezed: %+v", f.Squeeze)
	}
	if f := firstSqueezed(squeezeRows(squeezeLinks(2), elsewhere, until), onset); f == nil {
		t.Errorf("a squeeze 100 m before the link's habitual slow spot is never judged")
	}
	one := squeezeRows(squeezeLinks(1), fresh, until)
	if f := firstSqueezed(one, t0); f != nil {
		t.Errorf("a one-lane link judged squeezed: %+v", f.Squeeze)
	}
	if one[len(one)-1].Squeeze.N < squeezeMinN {
		t.Errorf("a one-lane link's squeeze not read: %+v", one[len(one)-1].Squeeze)
	}
}

// Neither a queue at a red light (vehicles stand at its back, creep, and drive on) nor a full closure's queue
// (nothing passes) is a squeeze, however new.
func TestQueuesAreNotSqueezes(t *testing.T) {
	onset, until := t0+40*60_000, t0+50*60_000
	red := profileFixes(t0, 20_000, until, func(s, ts int64, pos float64) float64 {
		// From the onset every vehicle stands 30 s at 200 m (the back of a long queue), creeps, drives on.
		arrive := s + int64(200/(30/3.6)*1000)
		switch {
		case s < onset || ts < arrive || ts >= arrive+35_000:
			return 30
		case ts < arrive+30_000:
			return 0
		}
		return 10
	})
	closed := profileFixes(t0, 20_000, until, func(_, ts int64, pos float64) float64 {
		// From the onset nothing passes 150 m: vehicles slow behind it and stand.
		switch {
		case ts < onset || pos >= 150 || pos < 95:
			return 30
		case pos >= 125:
			return 0
		}
		return 10
	})
	for name, all := range map[string][]stateFix{"a red light's queue": red, "a full closure's queue": closed} {
		for _, f := range squeezeRows(squeezeLinks(2), all, until) {
			if f.Squeeze.Squeezed {
				t.Errorf("%s judged squeezed at %d s: %+v", name, (f.T-t0)/1000, f.Squeeze)
				break
			}
		}
	}
}

// The squeeze judge's state survives a snapshot taken mid-squeeze (vehicles between their slow fix and their
// recovery, squeezes not yet learned into the history): the restored tracker reads what the live one reads.
func TestASqueezeSurvivesASnapshot(t *testing.T) {
	onset, until := t0+40*60_000, t0+50*60_000
	all := squeezeFixes(t0, 20_000, until, 150, func(ts int64) bool { return ts >= onset })
	a := NewTracker(squeezeLinks(2), 10_000)
	var fa, fb []Features
	feedFixes(a, all, nil, t0, onset+95_000, &fa)
	data, err := a.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	b := NewTracker(squeezeLinks(2), 10_000)
	if err := b.RestoreState(data); err != nil {
		t.Fatal(err)
	}
	fa = nil
	feedFixes(a, all, nil, onset+95_000, until, &fa)
	feedFixes(b, all, nil, onset+95_000, until, &fb)
	if firstSqueezed(fa, onset) == nil {
		t.Fatal("the live tracker never judged the squeeze")
	}
	sameRows(t, fa, fb)
}

// A platoon held behind one slow vehicle (a car turning off mid-block) squeezes at one moment, and then the
// link flows: however new to the link, it is not a lane closed (the squeezes must span squeezeLastsMs).
func TestAPlatoonIsNotASqueeze(t *testing.T) {
	onset, until := t0+40*60_000, t0+50*60_000
	all := squeezeFixes(t0, 5_000, until, 150, func(ts int64) bool { return ts >= onset && ts < onset+20_000 })
	rows := squeezeRows(squeezeLinks(2), all, until)
	if f := firstSqueezed(rows, t0); f != nil {
		t.Errorf("a platoon squeezed at one moment judged squeezed at %d s: %+v", (f.T-t0)/1000, f.Squeeze)
	}
	n := 0
	for _, f := range rows {
		n = max(n, f.Squeeze.N)
	}
	if n < squeezeMinN {
		t.Errorf("the platoon's squeezes not read: at most %d vehicles, want %d or more", n, squeezeMinN)
	}
}

// A squeeze is a point with traffic back to speed past it: where the link after it crawls (its vehicles under
// crawlKmh), vehicles slowing and speeding up again on the link are the back of that link's queue, not a lane
// closed on this one.
func TestSqueezesBehindACrawlingLinkAreItsQueue(t *testing.T) {
	onset, until := t0+40*60_000, t0+50*60_000
	for _, crawl := range []bool{false, true} {
		all := profileFixes(t0, 20_000, until, func(s, ts int64, pos float64) float64 {
			switch {
			case s >= onset && pos >= 120 && pos <= 165:
				return 15
			case crawl && ts >= onset && pos >= 300:
				return 10
			}
			return 30
		})
		f := firstSqueezed(squeezeRows(squeezeLinks(2), all, until), onset)
		switch {
		case crawl && f != nil:
			t.Errorf("squeezes behind a crawling link judged squeezed: %+v", f.Squeeze)
		case !crawl && f == nil:
			t.Errorf("squeezes before a flowing link never judged")
		}
	}
}

// The exposure judge: two vehicles squeezed at one point, 100 s apart, are a lane closed there when they are
// all that passed it (a quiet two-lane link: every vehicle after the onset squeezes), though three squeezes
// spanning two minutes never come; the same two among a stream of vehicles that pass it at speed are not
// (fewer than one in Lanes of those passing squeezed).
func TestTwoSqueezedOfFewPassingIsALaneClosed(t *testing.T) {
	onset, until := t0+40*60_000, t0+50*60_000
	few := squeezeFixes(t0, 100_000, until, 150, func(ts int64) bool { return ts >= onset })
	f := firstSqueezed(squeezeRows(squeezeLinks(2), few, until), onset)
	if f == nil {
		t.Fatalf("two of two passing vehicles squeezed at 150 m of a two-lane link: never judged")
	}
	if d := f.T - onset; d > 5*60_000 || f.Squeeze.OffM < 120 || f.Squeeze.OffM > 165 || f.Squeeze.XK < exposureMinK {
		t.Errorf("two of two squeezed: judged %d s after the onset at %.0f m (%d of %d); want within 5 minutes, at 120-165 m",
			d/1000, f.Squeeze.OffM, f.Squeeze.XK, f.Squeeze.XN)
	}
	// The same two squeezed vehicles (the first at or after the onset and the one 100 s later) among vehicles
	// every 10 s driving past at speed.
	many := profileFixes(t0, 10_000, until, func(s, _ int64, pos float64) float64 {
		if (s >= onset && s < onset+10_000 || s >= onset+100_000 && s < onset+110_000) && pos >= 120 && pos <= 165 {
			return 15
		}
		return 30
	})
	rows := squeezeRows(squeezeLinks(2), many, until)
	if f := firstSqueezed(rows, t0); f != nil {
		t.Errorf("two squeezed among many passing judged squeezed at %d s: %+v", (f.T-t0)/1000, f.Squeeze)
	}
	k := 0
	for _, f := range rows {
		k = max(k, f.Squeeze.XK)
	}
	if k < 2 {
		t.Errorf("the two squeezes among many not read: at most %d", k)
	}
}
