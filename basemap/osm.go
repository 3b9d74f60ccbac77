package basemap

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"citybrain/geo"
)

// MaxOSMElements bounds the nodes, ways and relations an OSM extract may hold (a large city is a few million).
const MaxOSMElements = 20_000_000

type osmWay struct {
	refs []int64
	tags map[string]string
}

// LoadOSMFile reads an OSM XML extract; see LoadOSM.
func LoadOSMFile(path string) (*Set, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open OSM extract (%s): %w", path, err)
	}
	defer f.Close()
	s, err := LoadOSM(f)
	if err != nil {
		return nil, fmt.Errorf("cannot load %s: %w", path, err)
	}
	s.Source = filepath.Base(path)
	return s, nil
}

// LoadOSM reads an OSM XML extract (.osm) into base map features: water (natural=water, waterway=riverbank,
// landuse=reservoir|basin, as closed ways or multipolygon relations), parkland (leisure=park|garden|
// nature_reserve, landuse=grass|forest|meadow|recreation_ground|village_green|cemetery, natural=wood|scrub|
// grassland), waterways (river, canal, stream), named roads (highway=motorway … residential, with name,
// name:zh, name:en) and places (place=city … neighbourhood nodes). Untagged and other elements are skipped.
func LoadOSM(r io.Reader) (*Set, error) {
	dec := xml.NewDecoder(r)
	nodes := map[int64]geo.LatLng{}
	ways := map[int64]*osmWay{}
	var places []Feature
	type member struct {
		ref  int64
		role string
	}
	var rels []struct {
		tags    map[string]string
		members []member
	}
	var cur struct {
		kind    string // node, way, relation
		id      int64
		ll      geo.LatLng
		refs    []int64
		tags    map[string]string
		members []member
	}
	count, root := 0, false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			line, _ := dec.InputPos()
			return nil, fmt.Errorf("cannot parse OSM XML (line %d): %w", line, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if !root {
				if t.Name.Local != "osm" {
					return nil, fmt.Errorf("cannot parse OSM XML: root element <%s>, want <osm>", t.Name.Local)
				}
				root = true
			}
			switch t.Name.Local {
			case "node", "way", "relation":
				if count++; count > MaxOSMElements {
					return nil, fmt.Errorf("cannot load OSM extract: more than %d elements (cut a smaller extract)", MaxOSMElements)
				}
				cur.kind, cur.refs, cur.tags, cur.members = t.Name.Local, nil, nil, nil
				id, err := strconv.ParseInt(attr(t, "id"), 10, 64)
				if err != nil {
					line, _ := dec.InputPos()
					return nil, fmt.Errorf("cannot parse OSM XML (line %d): %s without a numeric id", line, t.Name.Local)
				}
				cur.id = id
				if t.Name.Local == "node" {
					lat, e1 := strconv.ParseFloat(attr(t, "lat"), 64)
					lng, e2 := strconv.ParseFloat(attr(t, "lon"), 64)
					if e1 != nil || e2 != nil || lat < -90 || lat > 90 || lng < -180 || lng > 180 {
						line, _ := dec.InputPos()
						return nil, fmt.Errorf("cannot parse OSM XML (line %d): node %d has no valid lat/lon", line, id)
					}
					cur.ll = geo.LatLng{Lat: lat, Lng: lng}
					nodes[id] = cur.ll
				}
			case "nd":
				if ref, err := strconv.ParseInt(attr(t, "ref"), 10, 64); err == nil {
					cur.refs = append(cur.refs, ref)
				}
			case "tag":
				if cur.tags == nil {
					cur.tags = map[string]string{}
				}
				if len(cur.tags) < 200 {
					cur.tags[attr(t, "k")] = attr(t, "v")
				}
			case "member":
				if attr(t, "type") == "way" {
					if ref, err := strconv.ParseInt(attr(t, "ref"), 10, 64); err == nil {
						cur.members = append(cur.members, member{ref, attr(t, "role")})
					}
				}
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "node":
				if p := cur.tags["place"]; p != "" && name(cur.tags) != "" {
					if rank, ok := placeRank[p]; ok {
						f := Feature{Kind: KindLabel, Of: "place", Class: p, Rank: rank, Point: cur.ll}
						f.Name, f.Names = names(cur.tags)
						places = append(places, f)
					}
				}
			case "way":
				ways[cur.id] = &osmWay{refs: cur.refs, tags: cur.tags}
			case "relation":
				if cur.tags["type"] == "multipolygon" && areaKind(cur.tags) != "" {
					rels = append(rels, struct {
						tags    map[string]string
						members []member
					}{cur.tags, cur.members})
				}
			}
		}
	}
	if !root {
		return nil, errors.New("cannot parse OSM XML: no <osm> element")
	}
	s := &Set{}
	line := func(w *osmWay) []geo.LatLng {
		pts := make([]geo.LatLng, 0, len(w.refs))
		for _, r := range w.refs {
			if p, ok := nodes[r]; ok {
				pts = append(pts, p)
			}
		}
		return pts
	}
	for _, w := range ways {
		if w.tags == nil {
			continue
		}
		closed := len(w.refs) >= 4 && w.refs[0] == w.refs[len(w.refs)-1]
		if k := areaKind(w.tags); k != "" && closed {
			if pts := line(w); len(pts) >= 4 {
				f := Feature{Kind: k, Rings: [][]geo.LatLng{pts}}
				f.Name, f.Names = names(w.tags)
				s.Features = append(s.Features, f)
			}
			continue
		}
		if ww := w.tags["waterway"]; ww == "river" || ww == "canal" || ww == "stream" {
			if pts := line(w); len(pts) >= 2 {
				f := Feature{Kind: KindWaterway, Class: ww, Line: pts}
				f.Name, f.Names = names(w.tags)
				s.Features = append(s.Features, f)
			}
			continue
		}
		if hw := w.tags["highway"]; roadClass[hw] {
			if pts := line(w); len(pts) >= 2 {
				f := Feature{Kind: KindRoad, Class: geo.ParseRoadClass(hw).String(), Line: pts}
				f.Name, f.Names = names(w.tags)
				s.Features = append(s.Features, f)
			}
		}
	}
	for _, rel := range rels {
		var outers, inners [][]geo.LatLng
		for _, m := range rel.members {
			w := ways[m.ref]
			if w == nil {
				continue
			}
			if m.role == "inner" {
				inners = append(inners, line(w))
			} else {
				outers = append(outers, line(w))
			}
		}
		for _, ring := range joinRings(outers) {
			f := Feature{Kind: areaKind(rel.tags), Rings: [][]geo.LatLng{ring}}
			for _, h := range joinRings(inners) {
				if inRing(ring, h[0]) {
					f.Rings = append(f.Rings, h)
				}
			}
			f.Name, f.Names = names(rel.tags)
			s.Features = append(s.Features, f)
		}
	}
	s.LabelPolygons()
	s.Features = append(s.Features, places...)
	return s, nil
}

var placeRank = map[string]int{"city": 1, "town": 2, "borough": 2, "suburb": 3, "quarter": 4, "village": 4, "neighbourhood": 5, "hamlet": 6}

var roadClass = map[string]bool{"motorway": true, "trunk": true, "primary": true, "secondary": true, "tertiary": true,
	"residential": true, "unclassified": true, "living_street": true, "motorway_link": true, "trunk_link": true,
	"primary_link": true, "secondary_link": true, "tertiary_link": true}

// areaKind says whether tags make an area water or park ("" neither).
func areaKind(t map[string]string) string {
	switch {
	case t["natural"] == "water", t["waterway"] == "riverbank", t["landuse"] == "reservoir", t["landuse"] == "basin", t["natural"] == "bay":
		return KindWater
	case t["leisure"] == "park", t["leisure"] == "garden", t["leisure"] == "nature_reserve",
		t["landuse"] == "grass", t["landuse"] == "forest", t["landuse"] == "meadow", t["landuse"] == "recreation_ground",
		t["landuse"] == "village_green", t["landuse"] == "cemetery", t["natural"] == "wood", t["natural"] == "scrub", t["natural"] == "grassland":
		return KindPark
	}
	return ""
}

func name(t map[string]string) string {
	if n := t["name"]; n != "" {
		return n
	}
	if n := t["name:zh"]; n != "" {
		return n
	}
	return t["name:en"]
}

// names returns the local name and the zh / en names of tags.
func names(t map[string]string) (string, map[string]string) {
	var m map[string]string
	for _, k := range []string{"zh", "en"} {
		v := t["name:"+k]
		if v == "" && k == "zh" {
			v = t["name:zh-Hans"]
		}
		if v != "" {
			if m == nil {
				m = map[string]string{}
			}
			m[k] = v
		}
	}
	return strings.TrimSpace(t["name"]), m
}

// joinRings joins ways end to end into closed rings (a multipolygon's outer or inner boundary); open
// leftovers are dropped.
func joinRings(parts [][]geo.LatLng) [][]geo.LatLng {
	var rings [][]geo.LatLng
	var open [][]geo.LatLng
	for _, p := range parts {
		if len(p) < 2 {
			continue
		}
		if len(p) >= 4 && p[0] == p[len(p)-1] {
			rings = append(rings, p)
			continue
		}
		open = append(open, p)
	}
	for len(open) > 0 {
		cur := open[0]
		open = open[1:]
		for progress := true; progress && cur[0] != cur[len(cur)-1]; {
			progress = false
			for i, o := range open {
				end := cur[len(cur)-1]
				switch {
				case o[0] == end:
					cur = append(cur, o[1:]...)
				case o[len(o)-1] == end:
					for j := len(o) - 2; j >= 0; j-- {
						cur = append(cur, o[j])
					}
				default:
					continue
				}
				open = append(open[:i], open[i+1:]...)
				progress = true
				break
			}
		}
		if len(cur) >= 4 && cur[0] == cur[len(cur)-1] {
			rings = append(rings, cur)
		}
	}
	return rings
}

func attr(el xml.StartElement, name string) string {
	for _, a := range el.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}
