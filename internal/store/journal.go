package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/warden-gateway/warden/internal/audit"
)

// The audit journal is the durable record of the audit log (issue 6).
// The writer goroutine appends each group of events to it with one
// write(2), and one fdatasync with Options.ProcessCrashOnly false, before
// it acknowledges them (a group of events nobody waits for, recorded with
// RecordLater, is written at once and synced with the next group, or
// after laterSyncDelay); the SQLite tables are an index of the journal,
// fed from it asynchronously in large transactions, and rebuilt from it at
// open after a crash. An acknowledged event is therefore always in the
// journal, the index, or both.
//
// # Files
//
// The journal lives in the directory <database>.journal next to the
// database file (mode 0700), as numbered segments "seg-<n>.wj" (n has 16
// decimal digits, so name order is creation order) and a LOCK file. The
// process that holds an exclusive flock on LOCK owns the journal: it alone
// appends events and indexes them. A second process on the same database
// (a CLI reading the log of a running gateway) opens the store as a
// follower: it reads the index as far as it has been written, and refuses
// to record events.
//
// A segment starts with the 8-byte header journalMagic; then records
// follow, each framed as
//
//	length  uint32, little-endian: the payload's length
//	crc     uint32, little-endian: CRC-32C (Castagnoli) of the payload
//	payload length bytes (see appendRecord)
//
// A record that is cut short or fails its checksum is a torn write from a
// crash in the middle of an append: its group was never acknowledged (the
// writer answers only after the whole write, and its sync, returned), so
// it and everything after it in its segment are dropped on recovery.
//
// The writer starts a new segment once the current one passes
// segmentSize, and after a failed append (so a partly written group can
// never sit in front of a later acknowledged one). A segment whose records
// have all been indexed is deleted once a completed checkpoint has made
// the index durable past them: the index itself commits without fsync. After a failed append the next segment
// may reuse ids the failed group had taken; recovery lets the later
// segment win, as the writer did.

const (
	// journalMagic opens every segment: a name and the format version.
	// A new format gets a new version byte; never reinterpret this one.
	journalMagic = "WDNJRNL\x01"

	// recordVersion is the first byte of every record payload.
	recordVersion = 2 // 2: status after bytes

	frameHeaderSize = 8

	// maxRecordSize bounds a record's payload when decoding, so a corrupt
	// length cannot make recovery allocate gigabytes. Events are far
	// smaller: the proxies bound the request text they put in them.
	maxRecordSize = 16 << 20
)

// segmentSize is the size past which the writer starts a new segment (a
// variable for tests).
var segmentSize int64 = 32 << 20

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errJournalBusy is returned by openJournal when another process owns the
// journal.
var errJournalBusy = errors.New("audit journal is owned by another process")

// errTorn marks a record that is incomplete or does not match its
// checksum.
var errTorn = errors.New("torn or corrupt journal record")

// journal is the owner's handle on the journal directory. The writer
// goroutine alone calls append and rotate; deleteIndexed is called by the
// indexer; mu guards closed.
type journal struct {
	dir  string
	lock *os.File // holds the flock while open
	sync bool     // fdatasync every append

	f     *os.File // the segment being written
	seq   uint64   // its number
	off   int64    // bytes of whole records (and header) in it
	limit int64    // the size at which the writer moves on from it

	// syncedOff and syncedLast are where f's records are known durable
	// (equal to off and curLast without sync, or after every synced
	// append): appends made with sync false (events nobody waits for)
	// lie between them and off, and a failed write or sync cuts f back
	// to them.
	syncedOff  int64
	syncedLast int64

	// prepared delivers the next segment, zero-filled in the background
	// (nil: none under way); bg waits for its goroutine.
	prepared chan preparedSegment
	bg       sync.WaitGroup

	// fault, if set (tests only), fails each append with its error
	// before anything is written.
	fault atomic.Pointer[error]

	mu sync.Mutex
	// closed lists the segments no longer written, oldest first, with the
	// last id each holds; deleteIndexed removes them once indexed.
	closed []closedSegment
	// curLast is the last id appended to f (0: none yet).
	curLast int64
}

type closedSegment struct {
	path   string
	lastID int64
}

// journalDir is not "<db>-journal": that is SQLite's rollback journal.
func journalDir(dbPath string) string { return dbPath + ".journal" }

func segmentName(seq uint64) string { return fmt.Sprintf("seg-%016d.wj", seq) }

// openJournal creates the journal directory if needed and takes its lock.
// It returns errJournalBusy if another process holds it.
func openJournal(dbPath string, sync bool) (_ *journal, err error) {
	dir := journalDir(dbPath)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("journal: %w", err)
	} else if err == nil {
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return nil, fmt.Errorf("journal: %w", err)
		}
	}
	lock, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errJournalBusy
		}
		return nil, fmt.Errorf("journal: lock: %w", err)
	}
	return &journal{dir: dir, lock: lock, sync: sync}, nil
}

// segments returns the segment numbers in the directory, ascending.
func (j *journal) segments() ([]uint64, error) {
	ents, err := os.ReadDir(j.dir)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	var seqs []uint64
	for _, e := range ents {
		name := e.Name()
		num, ok := strings.CutPrefix(name, "seg-")
		num, ok2 := strings.CutSuffix(num, ".wj")
		if !ok || !ok2 || len(num) != 16 {
			continue
		}
		n, err := strconv.ParseUint(num, 10, 64)
		if err != nil {
			continue
		}
		seqs = append(seqs, n)
	}
	slices.Sort(seqs)
	return seqs, nil
}

// recover reads every segment and returns, in id order, the records after
// the index's head (headID, headHash) that form the chain's continuation:
// what was acknowledged (and perhaps a group that was written but not
// acknowledged, which is harmless to keep) but not yet indexed. It checks
// each record's checksum, hash and link; a torn tail of a segment is
// dropped. A record that does not continue the chain is an error: the
// journal or the index has been damaged, and the store refuses to open
// rather than fork the chain.
func (j *journal) recover(headID int64, headHash []byte) (recs []*request, maxSeq uint64, err error) {
	seqs, err := j.segments()
	if err != nil {
		return nil, 0, err
	}
	for _, seq := range seqs {
		maxSeq = max(maxSeq, seq)
		path := filepath.Join(j.dir, segmentName(seq))
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, 0, fmt.Errorf("journal: %w", err)
		}
		segRecs, _ := decodeSegment(data)
		// The segment is deleted like any closed one, once the index is
		// durable past its last record.
		var last int64
		if len(segRecs) > 0 {
			last = segRecs[len(segRecs)-1].ev.ID
		}
		j.closed = append(j.closed, closedSegment{path: path, lastID: last})
		if len(segRecs) == 0 {
			continue
		}
		// A segment written after a failed append may start at an id an
		// earlier segment already holds (from the failed, unacknowledged
		// group): the later segment wins, as it did for the writer.
		first := segRecs[0].ev.ID
		for len(recs) > 0 && recs[len(recs)-1].ev.ID >= first {
			recs = recs[:len(recs)-1]
		}
		recs = append(recs, segRecs...)
	}
	// Keep what the index lacks, and check that it continues the index's
	// chain record by record.
	i := 0
	for i < len(recs) && recs[i].ev.ID <= headID {
		i++
	}
	recs = recs[i:]
	prevID, prev := headID, headHash
	for _, r := range recs {
		if r.ev.ID != prevID+1 {
			// E.g. a database restored from a backup older than the
			// journal's oldest segment: the records between are gone.
			return nil, 0, fmt.Errorf("journal: record %d follows record %d (records missing between the index and the journal in %s): %w",
				r.ev.ID, prevID, j.dir, audit.ErrChainBroken)
		}
		if string(r.prev) != string(prev) {
			return nil, 0, fmt.Errorf("journal: record %d does not link to record %d: %w", r.ev.ID, prevID, audit.ErrChainBroken)
		}
		h, err := audit.HashWithVersion(r.version, r.prev, &r.ev)
		if err != nil || string(h) != string(r.hash) {
			return nil, 0, fmt.Errorf("journal: record %d does not match its hash: %w", r.ev.ID, audit.ErrChainBroken)
		}
		prevID, prev = r.ev.ID, r.hash
	}
	return recs, maxSeq, nil
}

// decodeSegment decodes a segment's records up to the first torn or
// corrupt one, and returns them with the length of the valid prefix.
func decodeSegment(data []byte) ([]*request, int) {
	if len(data) < len(journalMagic) || string(data[:len(journalMagic)]) != journalMagic {
		return nil, 0 // a segment torn while its header was written holds nothing
	}
	off := len(journalMagic)
	var recs []*request
	for off < len(data) {
		r, n, err := decodeRecord(data[off:])
		if err != nil {
			break
		}
		if len(recs) > 0 && r.ev.ID <= recs[len(recs)-1].ev.ID {
			// Ids only grow within a segment (they may jump past a prune
			// record, which is in the index only): treat as damage from
			// here on. recover checks the chain itself.
			break
		}
		recs = append(recs, r)
		off += n
	}
	return recs, off
}

// start opens a fresh segment numbered after those recovery read. Those
// stay until the index is durable past them (deleteIndexed).
func (j *journal) start(maxSeq uint64) error {
	return j.newSegment(maxSeq + 1)
}

// newSegment creates segment seq (or takes the one prepared in the
// background, if it is ready) and makes it the current one; the previous
// one (if any) joins closed.
func (j *journal) newSegment(seq uint64) error {
	var f *os.File
	if j.prepared != nil {
		// Wait for it: it is almost always ready, being started half a
		// segment ahead.
		p := <-j.prepared
		j.prepared = nil
		if p.err == nil && p.seq == seq {
			f = p.f
		} else if p.f != nil {
			p.f.Close()
			os.Remove(p.f.Name())
		}
	}
	limit := segmentSize
	if f == nil {
		var err error
		if f, err = createSegment(j.dir, seq, 0); err != nil {
			return err
		}
		// Not zero-filled (a fresh store, or the prepared one was late):
		// move to a prepared segment soon.
		limit = min(segmentSize, 1<<20)
	}
	j.mu.Lock()
	if j.f != nil {
		j.f.Close()
		if j.curLast > 0 {
			j.closed = append(j.closed, closedSegment{path: filepath.Join(j.dir, segmentName(j.seq)), lastID: j.curLast})
		} else {
			os.Remove(filepath.Join(j.dir, segmentName(j.seq)))
		}
	}
	j.f, j.seq, j.off, j.curLast, j.limit = f, seq, int64(len(journalMagic)), 0, limit
	j.syncedOff, j.syncedLast = j.off, 0
	j.mu.Unlock()
	return nil
}

// createSegment creates segment seq with its header and, if size > 0,
// zeros up to size, all synced with the directory entry. A segment that
// could vanish would take acknowledged records with it, so this is synced
// in both modes. Zeros written ahead make an append overwrite blocks the
// file already has, so fdatasync flushes the data alone rather than also
// committing the file system's journal for a new size; recovery reads the
// zeros after the last record as a torn tail.
func createSegment(dir string, seq uint64, size int64) (_ *os.File, err error) {
	path := filepath.Join(dir, segmentName(seq))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path)
		}
	}()
	if _, err := f.Write([]byte(journalMagic)); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if size > int64(len(journalMagic)) {
		zeros := make([]byte, 1<<20)
		for off := int64(len(journalMagic)); off < size; off += int64(len(zeros)) {
			if _, err := f.WriteAt(zeros[:min(int64(len(zeros)), size-off)], off); err != nil {
				return nil, fmt.Errorf("journal: %w", err)
			}
		}
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	return f, nil
}

// preparedSegment is a segment made ready by prepareNext.
type preparedSegment struct {
	seq uint64
	f   *os.File
	err error
}

// prepareNext starts creating the next segment, zero-filled, in the
// background, so that the writer never waits for it.
func (j *journal) prepareNext() {
	if j.prepared != nil {
		return
	}
	ch := make(chan preparedSegment, 1)
	j.prepared = ch
	seq, dir := j.seq+1, j.dir
	j.bg.Add(1)
	go func() {
		defer j.bg.Done()
		f, err := createSegment(dir, seq, segmentSize)
		ch <- preparedSegment{seq: seq, f: f, err: err}
	}()
}

// append writes buf, whole records of ids up to lastID, with one write
// and, in sync mode and if sync is set, one fdatasync, which also makes
// durable whatever earlier appends wrote without one. On failure it cuts
// the segment back to its last durable record (dropping the failed group,
// never acknowledged, and any unsynced records before it) and moves to a
// new segment, so they cannot stand before later records; if even that
// fails, the error is returned and the next append tries again.
func (j *journal) append(buf []byte, lastID int64, sync bool) error {
	if err := j.write(buf, sync && j.sync); err != nil {
		return j.cut(err)
	}
	j.off += int64(len(buf))
	j.mu.Lock()
	j.curLast = lastID
	j.mu.Unlock()
	if sync || !j.sync {
		j.syncedOff, j.syncedLast = j.off, lastID
	}
	return nil
}

// syncNow makes durable what appends wrote without a sync. On failure it
// cuts them away as append does.
func (j *journal) syncNow() error {
	if j.syncedOff == j.off {
		return nil
	}
	if err := j.fault.Load(); err != nil {
		return j.cut(*err)
	}
	if err := fdatasync(j.f); err != nil {
		return j.cut(fmt.Errorf("journal: sync: %w", err))
	}
	j.mu.Lock()
	j.syncedOff, j.syncedLast = j.off, j.curLast
	j.mu.Unlock()
	return nil
}

// unsynced reports whether appends wrote records not yet known durable.
func (j *journal) unsynced() bool { return j.syncedOff != j.off }

// cut handles a failed write or sync (see append) and returns err.
func (j *journal) cut(err error) error {
	_ = j.f.Truncate(j.syncedOff) // best effort: recovery drops a torn tail anyway
	j.off = j.syncedOff
	j.mu.Lock()
	j.curLast = j.syncedLast
	j.mu.Unlock()
	if rerr := j.newSegment(j.seq + 1); rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}

func (j *journal) write(buf []byte, sync bool) error {
	if err := j.fault.Load(); err != nil {
		return *err
	}
	if _, err := j.f.WriteAt(buf, j.off); err != nil {
		return fmt.Errorf("journal: write: %w", err)
	}
	if sync {
		if err := fdatasync(j.f); err != nil {
			return fmt.Errorf("journal: sync: %w", err)
		}
	}
	return nil
}

// maybeRotate starts a new segment once the current one is large, so
// indexed records can be deleted a segment at a time.
func (j *journal) maybeRotate() error {
	if j.off >= j.limit/2 {
		j.prepareNext()
	}
	if j.off < j.limit-j.limit/16 || j.unsynced() {
		return nil
	}
	return j.newSegment(j.seq + 1)
}

// deleteIndexed removes the closed segments whose records are all in the
// index (ids up to indexed). The caller must know the index to be durable
// to that point: the index commits without fsync (synchronous=NORMAL), so
// only a completed checkpoint, which syncs the database file, vouches for
// it (runCheckpointer).
func (j *journal) deleteIndexed(indexed int64) error {
	j.mu.Lock()
	var del []closedSegment
	for len(j.closed) > 0 && j.closed[0].lastID <= indexed {
		del = append(del, j.closed[0])
		j.closed = j.closed[1:]
	}
	j.mu.Unlock()
	var errs []error
	for _, s := range del {
		if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// close closes the current segment and releases the lock. The segments
// stay: whatever they hold beyond the index is indexed at the next open.
func (j *journal) close() error {
	var errs []error
	j.bg.Wait()
	if j.prepared != nil {
		if p := <-j.prepared; p.f != nil { // never used: holds nothing
			p.f.Close()
			os.Remove(p.f.Name())
		}
	}
	if j.f != nil {
		errs = append(errs, j.f.Close())
	}
	errs = append(errs, j.lock.Close()) // releases the flock
	return errors.Join(errs...)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// appendRecord appends the framed journal record of req (whose ev.ID,
// version, prev and hash are set) to dst. The payload is
//
//	byte     recordVersion
//	uvarint  id
//	uvarint  hash version
//	[32]byte prev hash
//	[32]byte hash
//	varint   time, Unix seconds
//	uvarint  time, nanoseconds
//	string   × 19: kind, session_id, protocol, target, client, subject,
//	         issuer, groups (the JSON array stored in the index), token_id,
//	         request, request_hash, stmt_kind, decision, policy, rule,
//	         reason, error, fingerprint, params_hash
//	varint   × 5: seq, duration_us, rows, bytes, status (status: record
//	         version 2; version 1 records, written before it, have none)
//
// where a string is a uvarint length and the bytes.
func appendRecord(dst []byte, req *request) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0) // frame header, filled in below
	ev := &req.ev
	dst = append(dst, recordVersion)
	dst = binary.AppendUvarint(dst, uint64(ev.ID))
	dst = binary.AppendUvarint(dst, uint64(req.version))
	dst = append(dst, req.prev...)
	dst = append(dst, req.hash...)
	dst = binary.AppendVarint(dst, ev.Time.Unix())
	dst = binary.AppendUvarint(dst, uint64(ev.Time.Nanosecond()))
	for _, s := range [...]string{
		ev.Kind, ev.SessionID, ev.Protocol, ev.Target, ev.Client, ev.Subject,
		ev.Issuer, req.groups, ev.TokenID, ev.Request, ev.RequestHash, ev.StmtKind,
		ev.Decision, ev.Policy, ev.Rule, ev.Reason, ev.Error, ev.Fingerprint, ev.ParamsHash,
	} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	for _, v := range [...]int64{ev.Seq, ev.DurationUS, ev.Rows, ev.Bytes, ev.Status} {
		dst = binary.AppendVarint(dst, v)
	}
	payload := dst[start+frameHeaderSize:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(payload, crcTable))
	return dst
}

// decodeRecord decodes the framed record at the start of b and returns it
// with the number of bytes it took. Any defect (short, oversized, bad
// checksum, bad field) is errTorn.
func decodeRecord(b []byte) (*request, int, error) {
	if len(b) < frameHeaderSize {
		return nil, 0, errTorn
	}
	n := binary.LittleEndian.Uint32(b)
	if n == 0 || n > maxRecordSize || uint64(n) > uint64(len(b)-frameHeaderSize) {
		return nil, 0, errTorn
	}
	payload := b[frameHeaderSize : frameHeaderSize+int(n)]
	if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, 0, errTorn
	}
	r, err := decodePayload(payload)
	if err != nil {
		return nil, 0, err
	}
	return r, frameHeaderSize + int(n), nil
}

// payloadReader reads payload fields; the first error sticks.
type payloadReader struct {
	b   []byte
	err error
}

func (p *payloadReader) uvarint() uint64 {
	if p.err != nil {
		return 0
	}
	v, n := binary.Uvarint(p.b)
	if n <= 0 {
		p.err = errTorn
		return 0
	}
	p.b = p.b[n:]
	return v
}

func (p *payloadReader) varint() int64 {
	if p.err != nil {
		return 0
	}
	v, n := binary.Varint(p.b)
	if n <= 0 {
		p.err = errTorn
		return 0
	}
	p.b = p.b[n:]
	return v
}

func (p *payloadReader) bytes(n uint64) []byte {
	if p.err != nil {
		return nil
	}
	if n > uint64(len(p.b)) {
		p.err = errTorn
		return nil
	}
	v := p.b[:n:n]
	p.b = p.b[n:]
	return v
}

func (p *payloadReader) str() string { return string(p.bytes(p.uvarint())) }

func decodePayload(b []byte) (*request, error) {
	if len(b) == 0 || (b[0] != 1 && b[0] != recordVersion) {
		return nil, errTorn
	}
	recVersion := b[0]
	p := payloadReader{b: b[1:]}
	r := &request{}
	ev := &r.ev
	id := p.uvarint()
	version := p.uvarint()
	r.prev = slices.Clone(p.bytes(audit.HashSize))
	r.hash = slices.Clone(p.bytes(audit.HashSize))
	sec := p.varint()
	nsec := p.uvarint()
	fields := [...]*string{
		&ev.Kind, &ev.SessionID, &ev.Protocol, &ev.Target, &ev.Client, &ev.Subject,
		&ev.Issuer, &r.groups, &ev.TokenID, &ev.Request, &ev.RequestHash, &ev.StmtKind,
		&ev.Decision, &ev.Policy, &ev.Rule, &ev.Reason, &ev.Error, &ev.Fingerprint, &ev.ParamsHash,
	}
	for _, f := range fields {
		*f = p.str()
	}
	for _, f := range [...]*int64{&ev.Seq, &ev.DurationUS, &ev.Rows, &ev.Bytes} {
		*f = p.varint()
	}
	if recVersion >= 2 {
		ev.Status = p.varint()
	}
	switch {
	case p.err != nil:
		return nil, p.err
	case len(p.b) != 0:
		return nil, errTorn
	case id == 0 || id > 1<<62 || version < 1 || version > audit.HashVersion:
		return nil, errTorn
	case nsec >= 1e9:
		return nil, errTorn
	}
	ev.ID, r.version = int64(id), int(version)
	ev.Time = time.Unix(sec, int64(nsec)).UTC()
	if y := ev.Time.Year(); y < 1 || y > 9999 {
		return nil, errTorn
	}
	if err := json.Unmarshal([]byte(r.groups), &ev.Groups); err != nil {
		return nil, errTorn
	}
	if len(ev.Groups) == 0 {
		ev.Groups = nil
	}
	return r, nil
}
