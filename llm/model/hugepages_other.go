//go:build !linux

package model

func adviseHugePages[T any](s []T) {}
