package admin

import "net/url"

// EscapeSegment escapes s as one path segment of an admin API URL, for
// clients: url.PathEscape (so '/' becomes %2F and cannot split the
// segment), and "." / ".." spelt %2E / %2E%2E, which would otherwise be
// taken as relative path steps.
//
//	"/api/v1/identities/" + admin.EscapeSegment("ci/bot@example.com") + "/revoke"
func EscapeSegment(s string) string {
	switch s {
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	}
	return url.PathEscape(s)
}

// SessionPath is the path of a session: DELETE it to terminate it.
func SessionPath(id string) string { return Prefix + "sessions/" + EscapeSegment(id) }

// RevokePath is the path to POST to revoke subject.
func RevokePath(subject string) string {
	return Prefix + "identities/" + EscapeSegment(subject) + "/revoke"
}

// ReviewsPath is the path of the review list: GET it, with filters.
const ReviewsPath = Prefix + "reviews"

// ReviewPath is the path of a review: GET it to read it.
func ReviewPath(id string) string { return ReviewsPath + "/" + EscapeSegment(id) }

// ApprovePath is the path to POST to approve review id.
func ApprovePath(id string) string { return ReviewPath(id) + "/approve" }

// DenyPath is the path to POST to deny review id.
func DenyPath(id string) string { return ReviewPath(id) + "/deny" }
