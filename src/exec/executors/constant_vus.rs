//! `constant-vus`: a fixed number of VUs loop for a duration (closed model).

use super::{finish, ExecEnv};
use crate::exec::vu_task::VuTask;
use crate::exec::{ScenarioRun, VuFactory};
use std::rc::Rc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

pub async fn run<F: VuFactory>(
    vus: u64,
    duration: Duration,
    sc: Rc<ScenarioRun>,
    env: ExecEnv<'_, F>,
) -> Result<(), String> {
    let local = env.segment.scale(vus) as usize;
    let owned = env.segment.owned_ids(vus);
    let end = Instant::now() + duration;
    let mut tasks = JoinSet::new();
    for i in 0..local {
        let vu = env.vu(&sc, &owned, i)?;
        VuTask::spawn(&mut tasks, vu, sc.clone(), env.run.clone(), move || {
            Instant::now() < end
        });
    }
    finish(tasks, end + env.graceful_stop, &env.run).await;
    Ok(())
}
