package blob

// SetListPageSize makes List ask for n keys per page, so that tests cross page boundaries
// with few objects.
func SetListPageSize(c *Client, n int32) { c.pageSize = n }
