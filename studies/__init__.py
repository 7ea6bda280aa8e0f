"""What an experiment is: campaign specs, the paper's tasks, the objective and the robustness analysis."""
