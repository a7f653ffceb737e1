package postgres

// GlobsRegexp is globsRegexp, for the tests against the server.
var GlobsRegexp = globsRegexp
