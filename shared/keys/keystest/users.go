package keystest

import (
	"slices"
	"testing"

	"github.com/keywaygw/keyway/shared/keys"
)

func userTests() []test {
	return []test{
		{"a created user reads back with every field", func(t *testing.T, s keys.Store) {
			mustCreateUser(t, s, fullUser("alice"))
			got, err := s.GetUser(ctx(t), "alice")
			noErr(t, "GetUser(alice)", err)
			same(t, "GetUser(alice)", got, fullUser("alice"))
		}},
		{"a user with only an id and a role reads back with empty fields", func(t *testing.T, s keys.Store) {
			want := &keys.User{UserID: "bob", UserRole: keys.RoleProxyAdminViewer}
			mustCreateUser(t, s, want)
			got, err := s.GetUser(ctx(t), "bob")
			noErr(t, "GetUser(bob)", err)
			same(t, "GetUser(bob)", got, &keys.User{UserID: "bob", UserRole: keys.RoleProxyAdminViewer})
		}},
		{"creating a user with a taken id fails with ErrExists and keeps the first", func(t *testing.T, s keys.Store) {
			mustCreateUser(t, s, fullUser("alice"))
			second := &keys.User{UserID: "alice", UserRole: keys.RoleProxyAdmin}
			wantErr(t, "second CreateUser(alice)", s.CreateUser(ctx(t), second), keys.ErrExists)
			got, err := s.GetUser(ctx(t), "alice")
			noErr(t, "GetUser(alice)", err)
			same(t, "GetUser(alice) after the refused create", got, fullUser("alice"))
		}},
		{"getting a missing user fails with ErrNotFound", func(t *testing.T, s keys.Store) {
			mustCreateUser(t, s, fullUser("alice"))
			_, err := s.GetUser(ctx(t), "bob")
			wantErr(t, "GetUser(bob)", err, keys.ErrNotFound)
		}},
		{"updating a user replaces every field", func(t *testing.T, s keys.Store) {
			mustCreateUser(t, s, fullUser("alice"))
			// Cleared fields must come back cleared: Update replaces, it
			// does not merge.
			want := &keys.User{
				UserID:    "alice",
				UserRole:  keys.RoleProxyAdmin,
				UserEmail: "new@example.com",
				Models:    []string{"only-this"},
				Spend:     99,
				Limits:    keys.Limits{RPMLimit: ptr(int64(7))},
				CreatedAt: at(0),
				UpdatedAt: at(100),
			}
			noErr(t, "UpdateUser(alice)", s.UpdateUser(ctx(t), want))
			got, err := s.GetUser(ctx(t), "alice")
			noErr(t, "GetUser(alice)", err)
			same(t, "GetUser(alice) after update", got, &keys.User{
				UserID:    "alice",
				UserRole:  keys.RoleProxyAdmin,
				UserEmail: "new@example.com",
				Models:    []string{"only-this"},
				Spend:     99,
				Limits:    keys.Limits{RPMLimit: ptr(int64(7))},
				CreatedAt: at(0),
				UpdatedAt: at(100),
			})
		}},
		{"updating a missing user fails with ErrNotFound and creates nothing", func(t *testing.T, s keys.Store) {
			wantErr(t, "UpdateUser(ghost)", s.UpdateUser(ctx(t), fullUser("ghost")), keys.ErrNotFound)
			_, err := s.GetUser(ctx(t), "ghost")
			wantErr(t, "GetUser(ghost) after the refused update", err, keys.ErrNotFound)
		}},
		{"a deleted user is gone from gets and lists", func(t *testing.T, s keys.Store) {
			mustCreateUser(t, s, fullUser("alice"))
			mustCreateUser(t, s, fullUser("bob"))
			removed, err := s.DeleteUser(ctx(t), "alice")
			noErr(t, "DeleteUser(alice)", err)
			if len(removed) != 0 {
				t.Errorf("DeleteUser(alice) of a user without keys: got tokens %v; want none", labels(removed))
			}
			_, err = s.GetUser(ctx(t), "alice")
			wantErr(t, "GetUser(alice) after delete", err, keys.ErrNotFound)
			us, err := s.ListUsers(ctx(t))
			noErr(t, "ListUsers", err)
			if got := userIDs(us); len(got) != 1 || got[0] != "bob" {
				t.Errorf("ListUsers after delete: got %q; want [bob]", got)
			}
		}},
		{"deleting a missing user fails with ErrNotFound", func(t *testing.T, s keys.Store) {
			_, err := s.DeleteUser(ctx(t), "ghost")
			wantErr(t, "DeleteUser(ghost)", err, keys.ErrNotFound)
		}},
		{"a deleted user's id can be used again", func(t *testing.T, s keys.Store) {
			mustCreateUser(t, s, fullUser("alice"))
			_, err := s.DeleteUser(ctx(t), "alice")
			noErr(t, "DeleteUser(alice)", err)
			again := &keys.User{UserID: "alice", UserRole: keys.RoleInternalUserViewer}
			mustCreateUser(t, s, again)
			got, err := s.GetUser(ctx(t), "alice")
			noErr(t, "GetUser(alice)", err)
			same(t, "GetUser(alice) after re-create", got, &keys.User{UserID: "alice", UserRole: keys.RoleInternalUserViewer})
		}},
		{"users are listed sorted by id", func(t *testing.T, s keys.Store) {
			for _, id := range []string{"carol", "alice", "Zed", "bob", "alice2"} {
				mustCreateUser(t, s, fullUser(id))
			}
			us, err := s.ListUsers(ctx(t))
			noErr(t, "ListUsers", err)
			got, want := userIDs(us), []string{"Zed", "alice", "alice2", "bob", "carol"}
			if !slices.Equal(got, want) {
				t.Errorf("ListUsers: got %q; want %q", got, want)
			}
			for _, u := range us {
				same(t, "ListUsers entry "+u.UserID, u, fullUser(u.UserID))
			}
		}},
	}
}

func teamTests() []test {
	return []test{
		{"a created team reads back with every field", func(t *testing.T, s keys.Store) {
			mustCreateTeam(t, s, fullTeam("ml"))
			got, err := s.GetTeam(ctx(t), "ml")
			noErr(t, "GetTeam(ml)", err)
			same(t, "GetTeam(ml)", got, fullTeam("ml"))
		}},
		{"creating a team with a taken id fails with ErrExists and keeps the first", func(t *testing.T, s keys.Store) {
			mustCreateTeam(t, s, fullTeam("ml"))
			wantErr(t, "second CreateTeam(ml)", s.CreateTeam(ctx(t), &keys.Team{TeamID: "ml"}), keys.ErrExists)
			got, err := s.GetTeam(ctx(t), "ml")
			noErr(t, "GetTeam(ml)", err)
			same(t, "GetTeam(ml) after the refused create", got, fullTeam("ml"))
		}},
		{"getting a missing team fails with ErrNotFound", func(t *testing.T, s keys.Store) {
			mustCreateTeam(t, s, fullTeam("ml"))
			_, err := s.GetTeam(ctx(t), "ops")
			wantErr(t, "GetTeam(ops)", err, keys.ErrNotFound)
		}},
		{"updating a team replaces every field", func(t *testing.T, s keys.Store) {
			mustCreateTeam(t, s, fullTeam("ml"))
			mk := func() *keys.Team {
				return &keys.Team{
					TeamID:    "ml",
					TeamAlias: "Machine learning",
					Limits:    keys.Limits{MaxBudget: ptr(0.0)},
					CreatedAt: at(0),
					UpdatedAt: at(50),
				}
			}
			noErr(t, "UpdateTeam(ml)", s.UpdateTeam(ctx(t), mk()))
			got, err := s.GetTeam(ctx(t), "ml")
			noErr(t, "GetTeam(ml)", err)
			same(t, "GetTeam(ml) after update", got, mk())
		}},
		{"updating a missing team fails with ErrNotFound and creates nothing", func(t *testing.T, s keys.Store) {
			wantErr(t, "UpdateTeam(ghost)", s.UpdateTeam(ctx(t), fullTeam("ghost")), keys.ErrNotFound)
			_, err := s.GetTeam(ctx(t), "ghost")
			wantErr(t, "GetTeam(ghost) after the refused update", err, keys.ErrNotFound)
		}},
		{"a deleted team is gone from gets and lists", func(t *testing.T, s keys.Store) {
			mustCreateTeam(t, s, fullTeam("ml"))
			mustCreateTeam(t, s, fullTeam("ops"))
			noErr(t, "DeleteTeam(ml)", s.DeleteTeam(ctx(t), "ml"))
			_, err := s.GetTeam(ctx(t), "ml")
			wantErr(t, "GetTeam(ml) after delete", err, keys.ErrNotFound)
			ts, err := s.ListTeams(ctx(t))
			noErr(t, "ListTeams", err)
			if got := teamIDs(ts); len(got) != 1 || got[0] != "ops" {
				t.Errorf("ListTeams after delete: got %q; want [ops]", got)
			}
		}},
		{"deleting a missing team fails with ErrNotFound", func(t *testing.T, s keys.Store) {
			wantErr(t, "DeleteTeam(ghost)", s.DeleteTeam(ctx(t), "ghost"), keys.ErrNotFound)
		}},
		{"a deleted team's id can be used again", func(t *testing.T, s keys.Store) {
			mustCreateTeam(t, s, fullTeam("ml"))
			noErr(t, "DeleteTeam(ml)", s.DeleteTeam(ctx(t), "ml"))
			mustCreateTeam(t, s, &keys.Team{TeamID: "ml", TeamAlias: "again"})
			got, err := s.GetTeam(ctx(t), "ml")
			noErr(t, "GetTeam(ml)", err)
			same(t, "GetTeam(ml) after re-create", got, &keys.Team{TeamID: "ml", TeamAlias: "again"})
		}},
		{"teams are listed sorted by id", func(t *testing.T, s keys.Store) {
			for _, id := range []string{"ops", "ml", "Research", "ml-2"} {
				mustCreateTeam(t, s, fullTeam(id))
			}
			ts, err := s.ListTeams(ctx(t))
			noErr(t, "ListTeams", err)
			got, want := teamIDs(ts), []string{"Research", "ml", "ml-2", "ops"}
			if !slices.Equal(got, want) {
				t.Errorf("ListTeams: got %q; want %q", got, want)
			}
			for _, tm := range ts {
				same(t, "ListTeams entry "+tm.TeamID, tm, fullTeam(tm.TeamID))
			}
		}},
	}
}

func userIDs(us []*keys.User) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.UserID
	}
	return out
}

func teamIDs(ts []*keys.Team) []string {
	out := make([]string, len(ts))
	for i, tm := range ts {
		out[i] = tm.TeamID
	}
	return out
}
