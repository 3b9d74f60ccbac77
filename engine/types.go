package engine

import (
	"citybrain/engine/incident"
	"citybrain/engine/registry"
	"citybrain/engine/schema"
	"citybrain/engine/window"
)

// The engine's vocabulary, defined in its rooms and named here so that callers need only this package.

// Events and their schema (engine/schema).
type (
	Event        = schema.Event
	Kind         = schema.Kind
	BatchBuilder = schema.BatchBuilder
	WindowStats  = schema.WindowStats
)

// The event kinds (engine/schema).
const (
	KindUnknown  = schema.KindUnknown
	KindProbe    = schema.KindProbe
	KindDetector = schema.KindDetector
	KindTransit  = schema.KindTransit
	KindVideo    = schema.KindVideo
	KindReport   = schema.KindReport
	KindUnit     = schema.KindUnit
	KindSensor   = schema.KindSensor
)

// Column indexes of Schema (engine/schema).
const (
	ColTS         = schema.ColTS
	ColKind       = schema.ColKind
	ColID         = schema.ColID
	ColLat        = schema.ColLat
	ColLng        = schema.ColLng
	ColCell       = schema.ColCell
	ColSource     = schema.ColSource
	ColSpeed      = schema.ColSpeed
	ColHeading    = schema.ColHeading
	ColFlow       = schema.ColFlow
	ColOccupancy  = schema.ColOccupancy
	ColInterval   = schema.ColInterval
	ColLane       = schema.ColLane
	ColRoute      = schema.ColRoute
	ColDelay      = schema.ColDelay
	ColMode       = schema.ColMode
	ColLoad       = schema.ColLoad
	ColType       = schema.ColType
	ColConfidence = schema.ColConfidence
	ColCount      = schema.ColCount
	ColQueue      = schema.ColQueue
	ColSeverity   = schema.ColSeverity
	ColText       = schema.ColText
	ColUnitType   = schema.ColUnitType
	ColStatus     = schema.ColStatus
	ColValue      = schema.ColValue
	ColUnit       = schema.ColUnit
	ColThreshold  = schema.ColThreshold
)

// SchemaVersion is written into the schema metadata; readers refuse other versions.
const SchemaVersion = schema.SchemaVersion

var (
	// Schema is the one engine schema of every event batch.
	Schema = schema.Schema
	// Kinds lists every valid kind in wire order.
	Kinds = schema.Kinds
	// Windows are the sliding windows every cell keeps.
	Windows = schema.Windows
	// Absent is the value of an optional number that was not given.
	Absent = schema.Absent
)

// Functions of engine/schema.
var (
	NewEvent        = schema.NewEvent
	Has             = schema.Has
	ParseKind       = schema.ParseKind
	CheckSchema     = schema.CheckSchema
	NewBatchBuilder = schema.NewBatchBuilder
	ReadEvent       = schema.ReadEvent
	F32             = schema.F32
	WindowIndex     = schema.WindowIndex
)

// Views of cells and links (engine/window).
type (
	CellView  = window.CellView
	Derived   = window.Derived
	LinkView  = window.LinkView
	LinkStats = window.LinkStats
	LinkCells = window.LinkCells
)

// Free-flow sources of a cell view (engine/window).
const (
	FreeFlowDefault = window.FreeFlowDefault
	FreeFlowLearned = window.FreeFlowLearned
	FreeFlowNetwork = window.FreeFlowNetwork
	MinSamples      = window.MinSamples
)

// Congestion levels (engine/window).
const (
	LevelSmooth          = window.LevelSmooth
	LevelBasicallySmooth = window.LevelBasicallySmooth
	LevelLight           = window.LevelLight
	LevelModerate        = window.LevelModerate
	LevelSevere          = window.LevelSevere
)

// Functions of engine/window.
var (
	Rollup             = window.Rollup
	Congestion         = window.Congestion
	TPI                = window.TPI
	Level              = window.Level
	FreeFlowSourceName = window.FreeFlowSourceName
	LinkCell           = window.LinkCell
	AttachCells        = window.AttachCells
)

// Incidents (engine/incident).
type (
	Incident    = incident.Incident
	Action      = incident.Action
	EvidenceRef = incident.EvidenceRef
	AuditEntry  = incident.AuditEntry
	Evidence    = incident.Evidence
)

// Incident statuses and thresholds (engine/incident).
const (
	StatusSuspected = incident.StatusSuspected
	StatusConfirmed = incident.StatusConfirmed
	StatusCleared   = incident.StatusCleared
	StatusDismissed = incident.StatusDismissed
	DetectScore     = incident.DetectScore
	ConfirmScore    = incident.ConfirmScore
)

// Unit is the latest known state of an emergency unit (engine/registry).
type Unit = registry.Unit
