package audit

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
	"time"
)

func sampleEvent() *Event {
	return &Event{
		ID:          7,
		Time:        time.Date(2025, 3, 1, 12, 30, 45, 123456789, time.UTC),
		Kind:        KindStatement,
		SessionID:   "s-1",
		Protocol:    "postgres",
		Target:      "prod-db",
		Client:      "127.0.0.1:5555",
		Subject:     "agent-1",
		Issuer:      "https://idp.example.com",
		Groups:      []string{"analysts", "sre"},
		TokenID:     "jti-1",
		Request:     "DELETE FROM orders",
		RequestHash: "abc",
		StmtKind:    "delete",
		Decision:    Deny,
		Policy:      "analyst-agents",
		Rule:        "default",
		Reason:      "not allowed",
		Error:       "",
	}
}

// sampleResult is sampleEvent with every field added in hash version 2 set.
func sampleResult() *Event {
	ev := sampleEvent()
	ev.Seq, ev.Fingerprint, ev.ParamsHash = 3, "DELETE FROM orders", "ff00"
	ev.DurationUS, ev.Rows, ev.Bytes = 1500, 42, 8192
	return ev
}

// sampleHTTPResult is sampleResult with the field added in hash version 3.
func sampleHTTPResult() *Event {
	ev := sampleResult()
	ev.Status = 403
	return ev
}

// TestHashCoversEveryField fails when Event gains a field: the new field
// must be added to Hash (under a new version in chainDomains), or records
// could be altered in that field without breaking the chain.
func TestHashCoversEveryField(t *testing.T) {
	const known = 26
	if n := reflect.TypeFor[Event]().NumField(); n != known {
		t.Fatalf("Event has %d fields, Hash covers %d: add the new field to Hash under a new hash version", n, known)
	}
	base := Hash(GenesisHash, sampleEvent())
	// Changing any single field must change the hash.
	v := reflect.ValueOf(sampleEvent()).Elem()
	for i := range v.NumField() {
		ev := sampleEvent()
		f := reflect.ValueOf(ev).Elem().Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(f.String() + "x")
		case reflect.Int64:
			f.SetInt(f.Int() + 1)
		case reflect.Slice:
			f.Set(reflect.ValueOf(append(ev.Groups, "extra")))
		case reflect.Struct: // time.Time
			ev.Time = ev.Time.Add(time.Nanosecond)
		default:
			t.Fatalf("field %s: unhandled kind %s", v.Type().Field(i).Name, f.Kind())
		}
		if bytes.Equal(Hash(GenesisHash, ev), base) {
			t.Errorf("changing field %s does not change the hash", v.Type().Field(i).Name)
		}
	}
}

func TestHashDeterministicAndUnambiguous(t *testing.T) {
	ev := sampleEvent()
	h1 := Hash(GenesisHash, ev)
	if len(h1) != HashSize {
		t.Fatalf("len = %d", len(h1))
	}
	// Same instant in another zone, and with a monotonic reading, hashes the same.
	ev2 := sampleEvent()
	ev2.Time = ev.Time.In(time.FixedZone("x", 3600))
	if !bytes.Equal(Hash(GenesisHash, ev2), h1) {
		t.Error("hash depends on the time zone")
	}
	// Moving bytes between adjacent fields must change the hash.
	a, b := sampleEvent(), sampleEvent()
	a.Policy, a.Rule = "ab", "c"
	b.Policy, b.Rule = "a", "bc"
	if bytes.Equal(Hash(GenesisHash, a), Hash(GenesisHash, b)) {
		t.Error("field boundaries are ambiguous")
	}
	a, b = sampleEvent(), sampleEvent()
	a.Groups, b.Groups = []string{"a", "b"}, []string{"ab"}
	if bytes.Equal(Hash(GenesisHash, a), Hash(GenesisHash, b)) {
		t.Error("group boundaries are ambiguous")
	}
	// nil and empty groups are the same record.
	a, b = sampleEvent(), sampleEvent()
	a.Groups, b.Groups = nil, []string{}
	if !bytes.Equal(Hash(GenesisHash, a), Hash(GenesisHash, b)) {
		t.Error("nil and empty groups hash differently")
	}
	if bytes.Equal(Hash(GenesisHash, ev), Hash(h1, ev)) {
		t.Error("hash does not depend on prev")
	}
}

// TestHashGolden pins every version of the encoding: if one changes, the
// chains written with it stop verifying, so a change must come as a new
// version. The expected values were computed by an independent
// implementation of the encoding documented on Hash (a few lines of
// Python's hashlib/struct). The version-1 value predates version 2 and is
// unchanged: records written before the upgrade still verify.
func TestHashGolden(t *testing.T) {
	tests := []struct {
		name    string
		version int
		ev      *Event
		want    string
	}{
		{"v1", 1, sampleEvent(), "161a56985d15c1bbf4eb092055ff1a9ea8a79b2605b3ca2e0408709f98057221"},
		{"v2 without result fields", 2, sampleEvent(), "14e9e0a993c88830e252de69cfc29b8027f8e61c7fb2deb859c18f2aed4d57bd"},
		{"v2 with result fields", 2, sampleResult(), "408e1c00f76d26c0502cb29c1abd752f9a82ca7e631a7450d44c804a25a07643"},
		{"v3 without status", 3, sampleEvent(), "4d2bbe413373d0594b3eaf8105e3b1d60e24febe4b2e63461b4d59133f5b594d"},
		{"v3 with status", 3, sampleHTTPResult(), "0bbb5fc7c12e593a718fc90fe77aff92393ad54f036ae15f395cd33824b8db07"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := HashWithVersion(tt.version, GenesisHash, tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(h); got != tt.want {
				t.Fatalf("HashWithVersion(%d, sample) = %s, want %s", tt.version, got, tt.want)
			}
		})
	}
	if !bytes.Equal(Hash(GenesisHash, sampleHTTPResult()), must(HashWithVersion(HashVersion, GenesisHash, sampleHTTPResult()))) {
		t.Error("Hash is not HashWithVersion(HashVersion, …)")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestHashVersionLimits: a version refuses to vouch for fields it does not
// encode, and unknown versions are refused rather than guessed at.
func TestHashVersionLimits(t *testing.T) {
	for _, set := range []func(*Event){
		func(e *Event) { e.Seq = 1 },
		func(e *Event) { e.Fingerprint = "x" },
		func(e *Event) { e.ParamsHash = "x" },
		func(e *Event) { e.DurationUS = 1 },
		func(e *Event) { e.Rows = 1 },
		func(e *Event) { e.Bytes = 1 },
	} {
		ev := sampleEvent()
		set(ev)
		if _, err := HashWithVersion(1, GenesisHash, ev); err == nil {
			t.Errorf("version 1 hashed an event with a version-2 field set: %+v", ev)
		}
	}
	if _, err := HashWithVersion(2, GenesisHash, sampleHTTPResult()); err == nil {
		t.Error("version 2 hashed an event with status set")
	}
	for _, v := range []int{-1, 0, HashVersion + 1} {
		if _, err := HashWithVersion(v, GenesisHash, sampleEvent()); err == nil {
			t.Errorf("HashWithVersion(%d) succeeded", v)
		}
	}
	// The domain separates versions even when the fields are the same.
	if bytes.Equal(must(HashWithVersion(1, GenesisHash, sampleEvent())), Hash(GenesisHash, sampleEvent())) {
		t.Error("versions 1 and 2 hash the same event identically")
	}
}

func TestChainVerifier(t *testing.T) {
	type rec struct {
		version    int
		ev         Event
		prev, hash []byte
	}
	// Records 1 and 2 predate version 2, the rest are results.
	build := func(n int) []rec {
		var out []rec
		prev := GenesisHash
		for i := 1; i <= n; i++ {
			ev, version := *sampleResult(), 2
			if i <= 2 {
				ev, version = *sampleEvent(), 1
			}
			ev.ID = int64(i)
			h := must(HashWithVersion(version, prev, &ev))
			out = append(out, rec{version, ev, prev, h})
			prev = h
		}
		return out
	}
	run := func(rs []rec, anchor int64, headID int64, headHash []byte) (int64, error) {
		var v ChainVerifier
		if anchor != 0 { // a pruned chain starting at record anchor
			v.Start(anchor, build(5)[anchor-2].hash) // the hash of the last pruned record
		}
		for i := range rs {
			if err := v.NextVersion(rs[i].version, &rs[i].ev, rs[i].prev, rs[i].hash); err != nil {
				return v.Checked(), err
			}
		}
		return v.Checked(), v.Finish(headID, headHash)
	}
	head := func(rs []rec) (int64, []byte) { return int64(len(rs)), rs[len(rs)-1].hash }

	tests := []struct {
		name    string
		mutate  func([]rec) ([]rec, int64, []byte)
		wantBad int64 // 0: verifies
		anchor  int64 // the first record of a pruned chain; 0: genesis
	}{
		{"intact", func(r []rec) ([]rec, int64, []byte) { id, h := head(r); return r, id, h }, 0, 0},
		{"empty", func(r []rec) ([]rec, int64, []byte) { return nil, 0, nil }, 0, 0},
		{"edited", func(r []rec) ([]rec, int64, []byte) {
			id, h := head(r)
			r[2].ev.Request = "SELECT 1"
			return r, id, h
		}, 3, 0},
		{"edited and rehashed", func(r []rec) ([]rec, int64, []byte) {
			id, h := head(r)
			r[2].ev.Request = "SELECT 1"
			r[2].hash = must(HashWithVersion(r[2].version, r[2].prev, &r[2].ev))
			return r, id, h
		}, 4, 0},
		{"deleted middle", func(r []rec) ([]rec, int64, []byte) {
			id, h := head(r)
			return append(r[:1:1], r[2:]...), id, h
		}, 2, 0},
		{"deleted first", func(r []rec) ([]rec, int64, []byte) { id, h := head(r); return r[1:], id, h }, 1, 0},
		{"truncated", func(r []rec) ([]rec, int64, []byte) { id, h := head(r); return r[:3], id, h }, 4, 0},
		{"head hash differs", func(r []rec) ([]rec, int64, []byte) { return r, 5, GenesisHash }, 5, 0},
		{"beyond head", func(r []rec) ([]rec, int64, []byte) { return r, 4, r[3].hash }, 5, 0},
		{"anchored", func(r []rec) ([]rec, int64, []byte) { id, h := head(r); return r[2:], id, h }, 0, 3},
		{"anchored, first deleted", func(r []rec) ([]rec, int64, []byte) { id, h := head(r); return r[3:], id, h }, 3, 3},
		{"anchored, deleted after anchor", func(r []rec) ([]rec, int64, []byte) {
			id, h := head(r)
			return append(r[2:3:3], r[4:]...), id, h
		}, 4, 3},
		{"anchored, wrong prev", func(r []rec) ([]rec, int64, []byte) { id, h := head(r); return r[2:], id, h }, 2, 2},
		{"anchored, everything pruned", func(r []rec) ([]rec, int64, []byte) { return nil, 5, r[4].hash }, 0, 6},
		{"version-1 record edited to carry a result field", func(r []rec) ([]rec, int64, []byte) {
			id, h := head(r)
			r[1].ev.Rows = 1000
			return r, id, h
		}, 2, 0},
		{"version label edited", func(r []rec) ([]rec, int64, []byte) {
			id, h := head(r)
			r[0].version = 2
			return r, id, h
		}, 1, 0},
		{"version goes back", func(r []rec) ([]rec, int64, []byte) {
			id, _ := head(r)
			r[3].ev = *sampleEvent()
			r[3].ev.ID, r[3].version = 4, 1
			r[3].hash = must(HashWithVersion(1, r[3].prev, &r[3].ev))
			r[4].prev = r[3].hash
			r[4].hash = must(HashWithVersion(2, r[4].prev, &r[4].ev))
			return r, id, r[4].hash
		}, 4, 0},
		{"unknown version", func(r []rec) ([]rec, int64, []byte) {
			id, h := head(r)
			r[4].version = 9
			return r, id, h
		}, 5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, id, h := tt.mutate(build(5))
			_, err := run(rs, tt.anchor, id, h)
			if tt.wantBad == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var ce *ChainError
			if !errors.As(err, &ce) || !errors.Is(err, ErrChainBroken) {
				t.Fatalf("err = %v, want *ChainError", err)
			}
			if ce.ID != tt.wantBad {
				t.Fatalf("first bad = %d (%s), want %d", ce.ID, ce.Reason, tt.wantBad)
			}
		})
	}
}

// TestChainVerifierAnchorOnly: a chain whose every record was pruned is
// its anchor alone, and the head must be the record just before it.
func TestChainVerifierAnchorOnly(t *testing.T) {
	prev := Hash(GenesisHash, sampleResult())
	var v ChainVerifier
	v.Start(8, prev)
	if err := v.Finish(7, prev); err != nil {
		t.Fatalf("Finish(7) = %v", err)
	}
	v = ChainVerifier{}
	v.Start(8, prev)
	var ce *ChainError
	if err := v.Finish(7, GenesisHash); !errors.As(err, &ce) || ce.ID != 7 {
		t.Fatalf("Finish with the wrong head hash = %v, want a chain error at 7", err)
	}
	v = ChainVerifier{}
	v.Start(8, prev)
	if err := v.Finish(9, prev); !errors.As(err, &ce) || ce.ID != 8 {
		t.Fatalf("Finish past the anchor = %v, want record 8 missing", err)
	}
}
