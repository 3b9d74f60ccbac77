package signals

import "sort"

func sortStrings(s []string) { sort.Strings(s) }

func sortedInts[V any](m map[int]V) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}
