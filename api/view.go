package api

import (
	"citybrain/engine"
	"citybrain/engine/queue"
	"citybrain/geo"
)

// View is the published state the API and the hub serve: an *engine.Engine in one process, or on a
// cluster's api node the merged view of what every partition's engine publishes (system/cluster.Merged).
type View interface {
	Config() engine.Config
	Status() engine.Status
	KindCounts() (events, late map[engine.Kind]uint64)
	Queues() []queue.Stat
	Cells(res int, bbox geo.BBox) ([]*engine.CellView, error)
	All() []*engine.CellView
	Links(bbox geo.BBox) []engine.LinkStats
	Incidents() []engine.Incident
	Units() []engine.Unit
	Assets() []engine.Event
	ActionResult(id string) (error, bool)
}

var _ View = (*engine.Engine)(nil)
