//! ZooKeeper history checker (being written).
