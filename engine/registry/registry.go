// Package registry is the engine's registry room: the latest state of every emergency unit and of every
// asset (transit vehicle, camera, loop detector, sensor), in event time, published as sorted lists for the
// map and for dispatch. Track and Publish belong to the engine's dispatcher; Units and Assets may be called
// from any goroutine.
package registry

import (
	"sort"
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"citybrain/engine/schema"
)

// Registry holds units and assets. Fields are owned by the dispatcher except the published lists.
type Registry struct {
	maxUnits, maxAssets int // MaxUnits, MaxAssetsPerKind (smaller in tests)

	units      map[string]Unit
	unitOrder  *lru[string] // units by last update: the least recent goes when the table is full
	unitsDirty bool
	unitSnap   atomic.Pointer[[]Unit]

	assets          map[assetKey]*assetEntry
	assetLatest     map[assetKey]int              // trackAssets' scratch: per asset of a batch, the row it keeps
	assetRows       []int                         // trackAssets' scratch: the rows kept, in row order
	assetOrder      [schema.NumKinds]*lru[string] // per kind, by last update
	assetsDirty     bool
	assetsPublished time.Time
	assetSnap       atomic.Pointer[[]schema.Event]
}

// New returns an empty registry.
func New() *Registry { return newRegistry(MaxUnits, MaxAssetsPerKind) }

func newRegistry(maxUnits, maxAssets int) *Registry {
	r := &Registry{maxUnits: maxUnits, maxAssets: maxAssets, units: map[string]Unit{}, unitOrder: newLRU[string](),
		assets: map[assetKey]*assetEntry{}}
	for k := range r.assetOrder {
		r.assetOrder[k] = newLRU[string]()
	}
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
	sorted := append([]Unit(nil), units...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].TS < sorted[j].TS })
	for _, u := range sorted { // oldest first: the least recently updated are evicted first
		r.units[u.ID] = u
		r.unitOrder.touch(u.ID)
	}
	list := append([]Unit(nil), units...)
	r.unitSnap.Store(&list)
}

// UnitList is the published unit list itself: a new pointer each time it is republished.
func (r *Registry) UnitList() *[]Unit { return r.unitSnap.Load() }

// AssetList is the published asset list itself: a new pointer each time it is republished.
func (r *Registry) AssetList() *[]schema.Event { return r.assetSnap.Load() }
