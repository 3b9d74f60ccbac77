package registry

import (
	"sort"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"citybrain/engine/schema"
)

// Unit is the latest known state of an emergency unit (from `unit` events, in event time).
type Unit struct {
	ID       string
	Type     string // ambulance, police, fire, tow, rescue
	Status   string // available, en_route, on_scene, busy, offline
	Lat, Lng float64
	SpeedKmh float64 // NaN when not reported
	TS       int64   // event time of the latest position
	Source   string
}

// MaxUnits bounds the unit registry; past it the unit updated longest ago is forgotten (lru.go).
const MaxUnits = 100_000

// trackUnits records the unit rows of rec (dispatcher goroutine). Positions older than the unit's latest are
// ignored, so out-of-order events do not move a unit backwards.
func (r *Registry) trackUnits(rec arrow.Record, kinds *array.Uint8) {
	var ids *array.String
	var ts *array.Timestamp
	for i := 0; i < kinds.Len(); i++ {
		if schema.Kind(kinds.Value(i)) != schema.KindUnit {
			continue
		}
		if ids == nil {
			ids = rec.Column(schema.ColID).(*array.String)
			ts = rec.Column(schema.ColTS).(*array.Timestamp)
		}
		id := ids.Value(i)
		t := int64(ts.Value(i))
		if u, ok := r.units[id]; ok && u.TS > t {
			continue
		}
		u := Unit{ID: schema.CloneStr(id), Type: schema.ReadStr(rec, schema.ColUnitType, i), Status: schema.ReadStr(rec, schema.ColStatus, i),
			Lat: rec.Column(schema.ColLat).(*array.Float64).Value(i), Lng: rec.Column(schema.ColLng).(*array.Float64).Value(i),
			SpeedKmh: schema.ReadF32(rec, schema.ColSpeed, i), TS: t, Source: schema.ReadStr(rec, schema.ColSource, i)}
		if _, known := r.units[u.ID]; !known && len(r.units) >= r.maxUnits {
			if old, ok := r.unitOrder.oldest(); ok {
				delete(r.units, old)
			}
		}
		r.units[u.ID] = u
		r.unitOrder.touch(u.ID)
		r.unitsDirty = true
	}
}

// publishUnits rebuilds the published unit list (dispatcher state: Apply's goroutine, or applyMu held).
func (r *Registry) publishUnits() {
	list := make([]Unit, 0, len(r.units))
	for _, u := range r.units {
		list = append(list, u)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	r.unitSnap.Store(&list)
	r.unitsDirty = false
}

// Units returns the latest state of every unit, by id (a shared slice: do not modify).
func (r *Registry) Units() []Unit { return *r.unitSnap.Load() }
