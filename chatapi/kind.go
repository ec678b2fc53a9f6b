package chatapi

import "fmt"

// Kind names a message-send endpoint, as written in a campaign's kind column.
type Kind string

// The kinds of the message-send API.
const (
	Users        Kind = "users"         // POST /messages/users
	Groups       Kind = "groups"        // POST /messages/chatgroups
	Rooms        Kind = "rooms"         // POST /messages/chatrooms
	GroupMembers Kind = "group_members" // POST /messages/chatgroups/users
	RoomMembers  Kind = "room_members"  // POST /messages/chatrooms/users
	LegacyUsers  Kind = "legacy_users"  // POST /messages, target_type users
	LegacyGroups Kind = "legacy_groups" // POST /messages, target_type chatgroups
)

// Kinds lists every kind in a stable order.
var Kinds = []Kind{Users, Groups, Rooms, GroupMembers, RoomMembers, LegacyUsers, LegacyGroups}

type kindInfo struct {
	path       string
	maxPerCall int
	scoped     bool
}

var kinds = map[Kind]kindInfo{
	Users:        {path: "/messages/users", maxPerCall: 600},
	Groups:       {path: "/messages/chatgroups", maxPerCall: 3},
	Rooms:        {path: "/messages/chatrooms", maxPerCall: 10},
	GroupMembers: {path: "/messages/chatgroups/users", maxPerCall: 20, scoped: true},
	RoomMembers:  {path: "/messages/chatrooms/users", maxPerCall: 20, scoped: true},
	LegacyUsers:  {path: "/messages", maxPerCall: 20},
	LegacyGroups: {path: "/messages", maxPerCall: 20},
}

// ParseKind returns the kind named s, or an error naming the known kinds.
func ParseKind(s string) (Kind, error) {
	k := Kind(s)
	if _, ok := kinds[k]; !ok {
		return "", fmt.Errorf("unknown kind %q (want one of users, groups, rooms, group_members, room_members, legacy_users, legacy_groups)", s)
	}
	return k, nil
}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { _, ok := kinds[k]; return ok }

// Path is the endpoint's path under the base URL.
func (k Kind) Path() string { return kinds[k].path }

// MaxPerCall is the most recipients one call may carry: IDs in "to" for
// users, groups and rooms, member IDs in "users" for the directed kinds, and
// the advised cap of "target" for the legacy API.
func (k Kind) MaxPerCall() int { return kinds[k].maxPerCall }

// Scoped reports whether the kind sends to members of one group or room,
// named by the batch's Scope.
func (k Kind) Scoped() bool { return kinds[k].scoped }

// Legacy reports whether the kind goes through the legacy /messages API.
func (k Kind) Legacy() bool { return k == LegacyUsers || k == LegacyGroups }
