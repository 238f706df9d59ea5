//! `switchyard sim` command line.
