package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// sharedDataDir is the real data of ../shared/data when it exists ("" otherwise): the default of the
// measurement commands when neither --citybrain-data nor $CITYBRAIN_DATA says.
func sharedDataDir() string {
	d, err := filepath.Abs(filepath.Join("..", "shared", "data"))
	if err != nil {
		return ""
	}
	if _, err := os.Stat(d); err != nil {
		return ""
	}
	return d
}

// boundedRun is the context of a measurement command: cancelled by SIGINT or SIGTERM, and after limit
// whatever happens inside.
func boundedRun(limit time.Duration) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, limit)
	return ctx, func() { cancel(); stop() }
}

// report is what the bench and eval reports have in common.
type report interface {
	Table() string
	WriteJSON(path string) error
}

// printReport prints rep's table and writes its JSON to out (its directory created) unless out is empty.
func printReport(rep report, out string) error {
	fmt.Print(rep.Table())
	if out == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("cannot create the report's directory (%s): %w", filepath.Dir(out), err)
	}
	if err := rep.WriteJSON(out); err != nil {
		return err
	}
	fmt.Printf("report: %s\n", out)
	return nil
}
