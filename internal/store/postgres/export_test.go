package postgres

import "context"

// ExecForTest runs a statement on the store's pool.
func ExecForTest(s *Store, sql string, args ...any) error {
	_, err := s.pool.Exec(context.Background(), sql, args...)
	return err
}
