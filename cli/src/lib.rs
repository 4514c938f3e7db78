//! The streampool command line
