//! One subscriber group, two processes: they share its work (redis).

use crate::support::group_share::{child_member, two_members_share_the_work, GROUP};
use crate::support::redis::{cleanup, config_on, SHARED_URL};

#[tokio::test]
#[ignore = "the child process of two_processes_in_one_group_share_the_work"]
async fn group_member_child() {
    child_member(config_on(SHARED_URL)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_in_one_group_share_the_work() {
    crate::support::init_tracing();
    let topic =
        two_members_share_the_work(config_on(SHARED_URL), "redis::groups::group_member_child")
            .await;
    cleanup(&topic);
    cleanup(&format!("{topic}.{GROUP}"));
}
