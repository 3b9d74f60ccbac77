// Package registry is the engine's registry room: the latest state of every emergency unit and of every
// asset (transit vehicle, camera, loop detector, sensor), in event time, published as sorted lists for the
// map and for dispatch. Track and Publish belong to the engine's dispatcher; Units and Assets may be called
// from any goroutine.
package registry

import (
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"citybrain/engine/schema"
)

// Registry holds units and assets. Fields are owned by the dispatcher except the published lists.
type Registry struct {
	units      map[string]Unit
	unitsDirty bool
	unitSnap   atomic.Pointer[[]Unit]

	assets          map[assetKey]schema.Event
	assetCount      [schema.NumKinds]int
	assetsDirty     bool
	assetsPublished time.Time
	assetSnap       atomic.Pointer[[]schema.Event]
}

// New returns an empty registry.
func New() *Registry {
	r := &Registry{units: map[string]Unit{}, assets: map[assetKey]schema.Event{}}
	r.unitSnap.Store(&[]Unit{})
	r.assetSnap.Store(&[]schema.Event{})
	return r
}

// Track records the unit and asset rows of rec (which has the engine schema).
func (r *Registry) Track(rec arrow.Record) {
	kinds := rec.Column(schema.ColKind).(*array.Uint8)
	r.trackUnits(rec, kinds)
	r.trackAssets(rec, kinds)
}

// Restore sets the units of a snapshot into a fresh registry and publishes them.
func (r *Registry) Restore(units []Unit) {
	for _, u := range units {
		r.units[u.ID] = u
	}
	list := append([]Unit(nil), units...)
	r.unitSnap.Store(&list)
}

// UnitList is the published unit list itself: a new pointer each time it is republished.
func (r *Registry) UnitList() *[]Unit { return r.unitSnap.Load() }

// AssetList is the published asset list itself: a new pointer each time it is republished.
func (r *Registry) AssetList() *[]schema.Event { return r.assetSnap.Load() }
