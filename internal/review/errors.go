package review

import "errors"

// Errors callers classify with errors.Is.
var (
	ErrNotFound     = errors.New("review: not found")
	ErrConflict     = errors.New("review: changed concurrently")
	ErrNotPending   = errors.New("review: not pending")
	ErrSelfApproval = errors.New("review: a requester cannot approve or deny its own request")
	ErrNotApprover  = errors.New("review: not an approver for this review")
	ErrDuplicate    = errors.New("review: already approved by this approver")
)

// ErrNotClaimed is why Manager.Executed refuses (and logs) a result for a
// review whose grant was not claimed: its state is not Executed.
var ErrNotClaimed = errors.New("review: not claimed")
